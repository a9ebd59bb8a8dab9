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
}
