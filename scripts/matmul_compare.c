// oneDNN's matmul (brgemm) against OpenBLAS's sgemm on the mlp's matrix shapes, 2 threads, median
// of 200 runs each; the figures quoted in docs/performance-log.md (session 5, the mlp row). Not part of
// the build. Run:
//   clang -O2 scripts/matmul_compare.c -o /tmp/matmul_compare -ldnnl -lopenblas &&
//   OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 /tmp/matmul_compare
// mode 0: C = A·B, 1: C = A·Bᵀ (a layer's forward), 2: C = Aᵀ·B (a weight gradient).
// Other shapes as arguments, M N K MODE each, e.g. one thread on the halves the engine gives each
// thread (session 12):
//   OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /tmp/matmul_compare \
//     64 392 256 1  64 128 784 0  392 256 64 2  64 256 784 1  64 256 784 0  784 256 64 2
#include <oneapi/dnnl/dnnl.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xmmintrin.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  _mm_setcsr(_mm_getcsr()|0x8040);
  dnnl_engine_t eng; dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_t st; dnnl_stream_create(&st,eng,0);
  int shapes[16][4]={{64,784,256,1},{64,256,784,0},{256,784,64,2},{64,256,256,1},{64,64,784,1},{784,64,64,2}};
  int count=6;
  if(argc>1){count=0; for(int i=1;i+3<argc&&count<16;i+=4,count++) for(int j=0;j<4;j++) shapes[count][j]=atoi(argv[i+j]);}
  for(int si=0;si<count;si++){
    int M=shapes[si][0],N=shapes[si][1],K=shapes[si][2],mode=shapes[si][3];
    float *A=malloc(4L*M*K),*B=malloc(4L*K*N),*C=malloc(4L*M*N);
    for(long i=0;i<(long)M*K;i++)A[i]=rand()/(float)RAND_MAX; for(long i=0;i<(long)K*N;i++)B[i]=rand()/(float)RAND_MAX;
    // oneDNN matmul: src [M,K] (mode 2: A stored as [K,M] -> strides), weights [K,N] (mode1: stored [N,K])
    dnnl_dims_t sd={M,K}, wd={K,N}, dd={M,N};
    dnnl_dims_t ss = {K,1}; if(mode==2){ss[0]=1;ss[1]=M;}
    dnnl_dims_t ws = {N,1}; if(mode==1){ws[0]=1;ws[1]=K;}
    dnnl_dims_t ds={N,1};
    dnnl_memory_desc_t smd,wmd,dmd;
    dnnl_memory_desc_init_by_strides(&smd,2,sd,dnnl_f32,ss);
    dnnl_memory_desc_init_by_strides(&wmd,2,wd,dnnl_f32,ws);
    dnnl_memory_desc_init_by_strides(&dmd,2,dd,dnnl_f32,ds);
    dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md,&smd,&wmd,NULL,&dmd);
    dnnl_primitive_desc_t pd; if(dnnl_primitive_desc_create(&pd,&md,NULL,eng,NULL)!=dnnl_success){printf("pd fail\n");continue;}
    const char *impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl);
    dnnl_primitive_t p; dnnl_primitive_create(&p,pd);
    dnnl_memory_t ms,mw,mdd; dnnl_memory_create(&ms,&smd,eng,A);dnnl_memory_create(&mw,&wmd,eng,B);dnnl_memory_create(&mdd,&dmd,eng,C);
    dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,ms},{DNNL_ARG_WEIGHTS,mw},{DNNL_ARG_DST,mdd}};
    double t[200];
    for(int r=0;r<220;r++){double a=now(); dnnl_primitive_execute(p,st,3,args); dnnl_stream_wait(st); if(r>=20)t[r-20]=now()-a;}
    qsort(t,200,sizeof(double),cmp); double dn=t[100];
    for(int r=0;r<220;r++){double a=now();
      if(mode==0) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,N,K,1,A,K,B,N,0,C,N);
      else if(mode==1) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,A,K,B,K,0,C,N);
      else cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,M,N,K,1,A,M,B,N,0,C,N);
      if(r>=20)t[r-20]=now()-a;}
    qsort(t,200,sizeof(double),cmp); double ob=t[100];
    double fl=2.0*M*N*K;
    printf("M%d N%d K%d mode%d: onednn %.3f ms (%.0f GF/s, %s)  openblas %.3f ms (%.0f GF/s)\n",M,N,K,mode,dn*1e3,fl/dn/1e9,impl,ob*1e3,fl/ob/1e9);
  }
}
