import Foundation
import CSupport
import Engine
import TestSupport
import XCTest

final class BufferCacheTests: XCTestCase {
    /// A freed large tensor's buffer is kept and handed to the next tensor of that size, which
    /// must still see only its own values; with capacity 0 nothing is kept.
    func testLargeBuffersAreReusedAndNeverLeakValues() {
        let saved = BufferCache.capacity
        defer { BufferCache.capacity = saved }
        BufferCache.capacity = 64 << 20
        BufferCache.release()
        let n = 300_000  // 1.2 MB, rounded to whole pages
        do {
            let t = Tensor.full([n], 7)
            XCTAssertEqual(t.scalars[n - 1], 7)
        }
        let kept = BufferCache.cachedBytes
        XCTAssertGreaterThanOrEqual(kept, n * 4)
        XCTAssertLessThan(kept, n * 4 + 4096)
        let z = Tensor.zeros([n])
        XCTAssertEqual(BufferCache.cachedBytes, 0, "the kept buffer was not reused")
        XCTAssertTrue(z.scalars.allSatisfy { $0 == 0 })
        let r = Tensor(shape: [n], (0..<n).map { Float($0) })
        XCTAssertEqual(r.scalars[12345], 12345)

        // Small buffers are kept too, by size rounded up to a cache line (4,000 → 4,032 bytes).
        BufferCache.release()
        do { _ = Tensor.full([1000], 1) }
        XCTAssertEqual(BufferCache.cachedBytes, 4032)
        let small = Tensor(shape: [1000], (0..<1000).map { Float(-$0) })
        XCTAssertEqual(BufferCache.cachedBytes, 0, "the kept small buffer was not reused")
        XCTAssertEqual(small.scalars[999], -999)
        do { _ = Tensor.full([1001], 1) }  // 4,004 bytes: the same line-rounded size
        XCTAssertEqual(BufferCache.cachedBytes, 4032)
        let zeros = Tensor.zeros([1001])
        XCTAssertEqual(BufferCache.cachedBytes, 0, "the kept line-rounded buffer was not reused")
        XCTAssertEqual(zeros.scalars, [Float](repeating: 0, count: 1001))

        BufferCache.capacity = 0
        do { _ = Tensor.full([n], 3) }
        XCTAssertEqual(BufferCache.cachedBytes, 0)
    }

    /// Buffers of many sizes (more than the first table of sizes holds, so it grows and moves
    /// them) are each kept under their own size and handed back only to a tensor of that size.
    func testManySizesAreKeptApartAcrossTableGrowth() {
        let saved = BufferCache.capacity
        defer { BufferCache.capacity = saved }
        BufferCache.capacity = 256 << 20
        BufferCache.release()
        // 300 small sizes (line-rounded) and 40 page-rounded ones, two tensors of each.
        let counts = (1...300).map { $0 * 16 } + (1...40).map { 40_000 + $0 * 1024 }
        var expected = 0
        do {
            var live: [Tensor] = []
            for (i, n) in counts.enumerated() {
                live.append(Tensor.full([n], Float(i)))
                live.append(Tensor.full([n], Float(-i)))
                let bytes = n * 4
                let rounded = bytes < 128 << 10 ? (bytes + 63) / 64 * 64 : (bytes + 4095) / 4096 * 4096
                expected += 2 * rounded
            }
        }
        XCTAssertEqual(BufferCache.cachedBytes, expected, "every freed buffer is kept, under its rounded size")
        // Taking each size back twice empties the cache: no buffer went to the wrong size's list.
        var again: [Tensor] = []
        for n in counts.reversed() {
            again.append(Tensor(shape: [n], (0..<n).map { Float($0) }))
            again.append(Tensor.zeros([n]))
        }
        XCTAssertEqual(BufferCache.cachedBytes, 0)
        XCTAssertEqual(again[0].scalars.last, Float(counts.last! - 1))
        XCTAssertTrue(again[1].scalars.allSatisfy { $0 == 0 })
        again = []
        XCTAssertEqual(BufferCache.release(), expected)
        XCTAssertEqual(BufferCache.cachedBytes, 0)
    }

    /// The cache never keeps more than its capacity, and lowering the capacity frees what is over.
    func testCapacityBoundsWhatIsKept() {
        let saved = BufferCache.capacity
        defer { BufferCache.capacity = saved }
        BufferCache.release()
        BufferCache.capacity = 10_000
        do { _ = [Tensor.full([1000], 1), Tensor.full([1000], 2), Tensor.full([1000], 3)] }
        XCTAssertEqual(BufferCache.cachedBytes, 8064, "two 4,032-byte buffers fit in 10,000 bytes, the third is freed")
        BufferCache.capacity = 5000
        XCTAssertEqual(BufferCache.cachedBytes, 0, "lowering the capacity below what is kept releases it")
        XCTAssertEqual(BufferCache.capacity, 5000)
    }

    /// GAN_BUFFER_CACHE_MIB: a count of MiB; unset or unreadable gives the default, negative none.
    func testCapacityFromTheEnvironmentValue() {
        XCTAssertEqual(gan_buffer_cache_capacity_from(nil), 1024 << 20)
        XCTAssertEqual(gan_buffer_cache_capacity_from("256"), 256 << 20)
        XCTAssertEqual(gan_buffer_cache_capacity_from("0"), 0)
        XCTAssertEqual(gan_buffer_cache_capacity_from("-5"), 0)
        XCTAssertEqual(gan_buffer_cache_capacity_from("12MB"), 1024 << 20)
        XCTAssertEqual(gan_buffer_cache_capacity_from(""), 1024 << 20)
    }

    /// Threads allocating and freeing at once leave the cache's count consistent: every buffer
    /// kept is counted once and handed out once.
    func testConcurrentUseKeepsCountsConsistent() {
        let saved = BufferCache.capacity
        defer { BufferCache.capacity = saved }
        BufferCache.capacity = 64 << 20
        BufferCache.release()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<2000 {
                let n = 64 + (i * 7 + t) % 50 * 16
                let x = Tensor.full([n], Float(t))
                if x.scalars.contains(where: { $0 != Float(t) }) { XCTFail("thread \(t) saw another thread's values") }
            }
        }
        let kept = BufferCache.cachedBytes
        XCTAssertGreaterThan(kept, 0)
        XCTAssertEqual(BufferCache.release(), kept)
    }
}
