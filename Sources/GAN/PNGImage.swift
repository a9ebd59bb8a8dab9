import CPNG
import Datasets
import Engine
import Foundation

/// 8-bit images written and read through libpng.
public struct PNGImage {
    public var width: Int
    public var height: Int
    /// 1 (gray) or 3 (RGB) bytes per pixel, row-major.
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int = 1, fill: UInt8 = 0) {
        precondition(width > 0 && height > 0 && (channels == 1 || channels == 3))
        self.width = width
        self.height = height
        self.channels = channels
        pixels = [UInt8](repeating: fill, count: width * height * channels)
    }

    /// Writes atomically: libpng writes a temporary file that is then renamed over `path`.
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".tmp-\(getpid()).png"
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { p in
            gan_png_write(tmp, p.baseAddress, Int32(width), Int32(height), Int32(channels), &message)
        }
        guard status == 0 else {
            unlink(tmp)
            throw FileFormatError(path, "cannot write PNG: \(String(cString: message))")
        }
        guard rename(tmp, path) == 0 else {
            let err = String(cString: strerror(errno))
            unlink(tmp)
            throw FileFormatError(path, "cannot write PNG: \(err)")
        }
    }

    /// Reads a PNG as 8-bit grayscale.
    public static func readGray(path: String) throws -> PNGImage {
        var w: Int32 = 0, h: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        guard let buffer = gan_png_read_gray(path, &w, &h, &message) else {
            throw FileFormatError(path, "not a readable PNG: \(String(cString: message))")
        }
        defer { free(buffer) }
        var img = PNGImage(width: Int(w), height: Int(h))
        img.pixels = Array(UnsafeBufferPointer(start: buffer, count: Int(w) * Int(h)))
        return img
    }

    /// A grid of grayscale images [N, 1, H, W] with values in `range`, `columns` wide, separated
    /// by `padding` pixels, each pixel repeated `scale` times.
    public static func grid(_ images: Tensor, range: (Float, Float), columns: Int, padding: Int = 2, scale: Int = 1) -> PNGImage {
        precondition(images.rank == 4 && images.shape[1] == 1, "grid needs [N, 1, H, W], got \(images.shape)")
        let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        let cols = Swift.max(1, Swift.min(columns, n))
        let rows = (n + cols - 1) / cols
        let cellW = w * scale, cellH = h * scale
        var img = PNGImage(width: cols * cellW + (cols + 1) * padding, height: rows * cellH + (rows + 1) * padding, fill: 40)
        let values = images.scalars
        for k in 0..<n {
            let ox = padding + (k % cols) * (cellW + padding), oy = padding + (k / cols) * (cellH + padding)
            for y in 0..<cellH {
                for x in 0..<cellW {
                    let v = values[(k * h + y / scale) * w + x / scale]
                    img.pixels[(oy + y) * img.width + ox + x] = quantize(v, range)
                }
            }
        }
        return img
    }

    /// Maps `range` to 0…255, rounding, as a saved image would hold the value.
    @inline(__always) public static func quantize(_ v: Float, _ range: (Float, Float)) -> UInt8 {
        pixelByte((v - range.0) / (range.1 - range.0))
    }
}
