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
        let n = 300_000  // 1.2 MB, above the 256 KiB threshold
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

        // Small tensors bypass the cache.
        do { _ = Tensor.full([1000], 1) }
        BufferCache.release()
        do { _ = Tensor.full([1000], 1) }
        XCTAssertEqual(BufferCache.cachedBytes, 0)

        BufferCache.capacity = 0
        do { _ = Tensor.full([n], 3) }
        XCTAssertEqual(BufferCache.cachedBytes, 0)
    }
}
