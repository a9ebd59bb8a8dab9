// oneDNN's convolution primitives for one shape in three configurations — the layout oneDNN
// prefers (format_tag_any: 16-channel blocks here), channels-last (nhwc) and a third: nhwc with
// convolution_auto on oneDNN 2.x, plain nchw on 3.x (which has no "auto" path of its own) —
// forward, input gradient (backward_data) and weight gradient, alternated over ROUNDS rounds of
// 5 runs each, median per pass; the figures quoted in docs/performance-log.md (sessions 8 and 12).
// Not part of the build. Builds against oneDNN 2.x (Debian's libdnnl-dev) or 3.x. Run
// (N C H O K S OH PADL PADR ROUNDS):
//   clang -O2 scripts/conv_layouts.c -o /tmp/conv_layouts -ldnnl &&
//   OMP_NUM_THREADS=2 /tmp/conv_layouts 64 128 28 128 5 2 14 1 2 21
// oneDNN 3.2 from PyPI (GNU OpenMP build, headers in the -devel wheel):
//   pip download --no-deps onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0 -d /tmp/w &&
//   for f in /tmp/w/*.whl; do unzip -qo $f -d /tmp/w/x; done && d=$(echo /tmp/w/x/*cpu_gomp*.data/data) &&
//   clang -O2 scripts/conv_layouts.c -I /tmp/w/x/onednn_devel*/data/include -L $d/lib -ldnnl
//     -Wl,-rpath,$d/lib -o /tmp/conv_layouts3
// oneDNN 3.13 (`onednn==2026.1.0`) is a SYCL build: the same binary runs on it with the wheels of
// onednn, intel-sycl-rt, intel-cmplr-lib-rt, intel-cmplr-lib-ur, tbb and intel-opencl-rt unpacked
// into one lib directory L, LD_LIBRARY_PATH=L and OCL_ICD_FILENAMES=L/libintelocl.so.
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static dnnl_engine_t eng; static dnnl_stream_t st;
#if DNNL_VERSION_MAJOR >= 3
typedef const_dnnl_memory_desc_t md_ref;
#else
typedef const dnnl_memory_desc_t *md_ref;
#endif
static dnnl_memory_t mk(md_ref md){dnnl_memory_t m; dnnl_memory_create(&m,md,eng,DNNL_MEMORY_ALLOCATE);
  void*p; dnnl_memory_get_data_handle(m,&p); size_t n=dnnl_memory_desc_get_size(md); float*f=p; for(size_t i=0;i<n/4;i++) f[i]=(rand()%1000)/1000.f-0.5f; return m;}
typedef struct { dnnl_primitive_t p; dnnl_exec_arg_t ea[4]; int na; char impl[64]; } prim;
static void setup(prim*P, dnnl_primitive_desc_t pd, int kind){
  const char*impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl); snprintf(P->impl,64,"%s",impl);
  dnnl_query_t q[3]; int args[3];
  if(kind==0){q[0]=dnnl_query_src_md;q[1]=dnnl_query_weights_md;q[2]=dnnl_query_dst_md;args[0]=DNNL_ARG_SRC;args[1]=DNNL_ARG_WEIGHTS;args[2]=DNNL_ARG_DST;}
  else if(kind==1){q[0]=dnnl_query_diff_dst_md;q[1]=dnnl_query_weights_md;q[2]=dnnl_query_diff_src_md;args[0]=DNNL_ARG_DIFF_DST;args[1]=DNNL_ARG_WEIGHTS;args[2]=DNNL_ARG_DIFF_SRC;}
  else {q[0]=dnnl_query_src_md;q[1]=dnnl_query_diff_dst_md;q[2]=dnnl_query_diff_weights_md;args[0]=DNNL_ARG_SRC;args[1]=DNNL_ARG_DIFF_DST;args[2]=DNNL_ARG_DIFF_WEIGHTS;}
  P->na=0; for(int i=0;i<3;i++){P->ea[P->na].arg=args[i]; P->ea[P->na].memory=mk(dnnl_primitive_desc_query_md(pd,q[i],0)); P->na++;}
  md_ref sp=dnnl_primitive_desc_query_md(pd,dnnl_query_scratchpad_md,0);
  if(sp && dnnl_memory_desc_get_size(sp)){P->ea[P->na].arg=DNNL_ARG_SCRATCHPAD; P->ea[P->na].memory=mk(sp); P->na++;}
  dnnl_primitive_create(&P->p,pd);
}
static double run(prim*P,int reps){double t[64]; for(int r=0;r<reps;r++){double a=now(); dnnl_primitive_execute(P->p,st,P->na,P->ea); dnnl_stream_wait(st); t[r]=now()-a;} qsort(t,reps,sizeof(double),cmp); return t[reps/2];}
int main(int argc,char**argv){
  setvbuf(stdout,NULL,_IONBF,0); _mm_setcsr(_mm_getcsr()|0x8040);
  dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_create(&st,eng,dnnl_stream_default_flags);
  int N=atoi(argv[1]),C=atoi(argv[2]),H=atoi(argv[3]),O=atoi(argv[4]),K=atoi(argv[5]),S=atoi(argv[6]),OH=atoi(argv[7]),PL=atoi(argv[8]),PR=atoi(argv[9]);
  int rounds=argc>10?atoi(argv[10]):5, reps=5;
  double gf=2.0*N*O*OH*OH*C*K*K*1e-9;
  dnnl_dims_t x={N,C,H,H},w={O,C,K,K},y={N,O,OH,OH},s={S,S},d={0,0},pl={PL,PL},pr={PR,PR};
#if DNNL_VERSION_MAJOR >= 3
  struct {dnnl_format_tag_t t; dnnl_alg_kind_t a; const char*n;} cf[]={{dnnl_format_tag_any,dnnl_convolution_direct,"blocked"},{dnnl_nhwc,dnnl_convolution_direct,"nhwc"},{dnnl_nchw,dnnl_convolution_direct,"nchw"}};
#else
  struct {dnnl_format_tag_t t; dnnl_alg_kind_t a; const char*n;} cf[]={{dnnl_format_tag_any,dnnl_convolution_direct,"blocked"},{dnnl_nhwc,dnnl_convolution_direct,"nhwc"},{dnnl_nhwc,dnnl_convolution_auto,"nhwc-auto"}};
#endif
  int NC=3; prim P[3][3]; double T[3][3][32];
  for(int c=0;c<NC;c++){
    dnnl_primitive_desc_t pd[3]={0};
#if DNNL_VERSION_MAJOR >= 3
    dnnl_memory_desc_t xm,wm,ym; dnnl_memory_desc_create_with_tag(&xm,4,x,dnnl_f32,cf[c].t); dnnl_memory_desc_create_with_tag(&wm,4,w,dnnl_f32,dnnl_format_tag_any); dnnl_memory_desc_create_with_tag(&ym,4,y,dnnl_f32,cf[c].t);
    dnnl_convolution_forward_primitive_desc_create(&pd[0],eng,dnnl_forward_training,cf[c].a,xm,wm,NULL,ym,s,d,pl,pr,NULL);
    dnnl_convolution_backward_data_primitive_desc_create(&pd[1],eng,cf[c].a,xm,wm,ym,s,d,pl,pr,pd[0],NULL);
    dnnl_convolution_backward_weights_primitive_desc_create(&pd[2],eng,cf[c].a,xm,wm,NULL,ym,s,d,pl,pr,pd[0],NULL);
#else
    dnnl_memory_desc_t xm,wm,ym; dnnl_memory_desc_init_by_tag(&xm,4,x,dnnl_f32,cf[c].t); dnnl_memory_desc_init_by_tag(&wm,4,w,dnnl_f32,dnnl_format_tag_any); dnnl_memory_desc_init_by_tag(&ym,4,y,dnnl_f32,cf[c].t);
    dnnl_convolution_desc_t fd,bd,wd;
    dnnl_dilated_convolution_forward_desc_init(&fd,dnnl_forward_training,cf[c].a,&xm,&wm,NULL,&ym,s,d,pl,pr);
    dnnl_dilated_convolution_backward_data_desc_init(&bd,cf[c].a,&xm,&wm,&ym,s,d,pl,pr);
    dnnl_dilated_convolution_backward_weights_desc_init(&wd,cf[c].a,&xm,&wm,NULL,&ym,s,d,pl,pr);
    dnnl_primitive_desc_create(&pd[0],&fd,NULL,eng,NULL);
    dnnl_primitive_desc_create(&pd[1],&bd,NULL,eng,pd[0]);
    dnnl_primitive_desc_create(&pd[2],&wd,NULL,eng,pd[0]);
#endif
    for(int k=0;k<3;k++){ if(!pd[k]){fprintf(stderr,"no primitive for configuration %s, pass %d\n",cf[c].n,k); return 1;} setup(&P[c][k],pd[k],k);}
  }
  for(int r=0;r<rounds;r++) for(int c=0;c<NC;c++) for(int k=0;k<3;k++) T[c][k][r]=run(&P[c][k],reps);
  const char*nm[3]={"fwd","bwd_d","bwd_w"};
  printf("oneDNN %d.%d: N%d C%d H%d O%d K%d S%d OH%d (%.2f GFLOP a pass)\n",DNNL_VERSION_MAJOR,DNNL_VERSION_MINOR,N,C,H,O,K,S,OH,gf);
  for(int k=0;k<3;k++) for(int c=0;c<NC;c++){ qsort(T[c][k],rounds,sizeof(double),cmp);
    printf("  %-6s %-10s %-22s median %7.2f ms (min %7.2f) %6.1f GFLOP/s\n",nm[k],cf[c].n,P[c][k].impl,T[c][k][rounds/2]*1e3,T[c][k][0]*1e3,gf/T[c][k][rounds/2]);}
  return 0;
}
