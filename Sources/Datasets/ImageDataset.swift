import CSupport
import Engine
import Foundation

/// Grayscale images with class labels, as stored in IDX files (uint8, N × H × W).
public struct ImageDataset: Sendable {
    public let name: String
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public let count: Int
    public let height: Int
    public let width: Int
    public var classes: Int { Int(labels.max() ?? 0) + 1 }

    public init(name: String, pixels: [UInt8], labels: [UInt8], count: Int, height: Int, width: Int) {
        precondition(pixels.count == count * height * width && labels.count == count)
        self.name = name
        self.pixels = pixels
        self.labels = labels
        self.count = count
        self.height = height
        self.width = width
    }

    /// Reads an image file and its label file and checks that they agree.
    public init(name: String, imagesPath: String, labelsPath: String) throws {
        let images = try IDXFile.read(path: imagesPath)
        let labels = try IDXFile.read(path: labelsPath)
        guard images.dimensions.count == 3 else {
            throw FileFormatError(imagesPath, "expected an image file with 3 dimensions (N, H, W), found \(images.dimensions)")
        }
        guard labels.dimensions.count == 1 else {
            throw FileFormatError(labelsPath, "expected a label file with 1 dimension (N), found \(labels.dimensions)")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw FileFormatError(labelsPath, "holds \(labels.dimensions[0]) labels but \(imagesPath) holds \(images.dimensions[0]) images")
        }
        self.init(name: name, pixels: images.bytes, labels: labels.bytes, count: images.dimensions[0],
                  height: images.dimensions[1], width: images.dimensions[2])
    }

    /// The first `n` examples (for quick runs and tests).
    public func prefix(_ n: Int) -> ImageDataset {
        let k = Swift.min(n, count)
        return ImageDataset(name: name, pixels: Array(pixels[0..<(k * height * width)]), labels: Array(labels[0..<k]),
                            count: k, height: height, width: width)
    }
}

/// How pixel bytes become floats.
public enum PixelScaling: String, Sendable, CaseIterable {
    /// x / 255
    case unit = "0,1"
    /// x / 127.5 − 1
    case symmetric = "-1,1"

    /// A byte x becomes x / divisor + shift.
    var divisorAndShift: (Float, Float) {
        switch self {
        case .unit: return (255, 0)
        case .symmetric: return (127.5, -1)
        }
    }
}

/// The 0…255 byte a value in [0, 1] becomes in a saved image (round to nearest, clamp).
@inline(__always) public func pixelByte(_ v: Float) -> UInt8 {
    if !(v > 0) { return 0 }
    return UInt8(Swift.min(255, (v * 255).rounded()))
}

/// Seeded shuffling and batching. Each epoch draws a permutation from the loader's generator,
/// so a loader restored with the same generator state yields the same batches.
public struct BatchLoader: Sendable {
    public let dataset: ImageDataset
    public let batchSize: Int
    public let dropLast: Bool
    public let scaling: PixelScaling
    public let shuffle: Bool

    public init(_ dataset: ImageDataset, batchSize: Int, scaling: PixelScaling, shuffle: Bool = true, dropLast: Bool = true) {
        precondition(batchSize > 0, "batch size must be positive")
        self.dataset = dataset
        self.batchSize = batchSize
        self.scaling = scaling
        self.shuffle = shuffle
        self.dropLast = dropLast
    }

    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The order of examples for one epoch.
    public func order(generator: inout RandomGenerator) -> [Int] {
        shuffle ? generator.permutation(dataset.count) : Array(0..<dataset.count)
    }

    /// Batch `index` of an epoch whose order is `order`: images [B, 1, H, W] and labels.
    public func batch(_ index: Int, order: [Int]) -> (images: Tensor, labels: [Int]) {
        let rows = batchRows(index, order: order)
        let images = Tensor(shape: [rows.count, 1, dataset.height, dataset.width]) { out in
            if let base = out.baseAddress { gatherImages(index, order: order, into: base) }
        }
        return (images, labels(index, order: order))
    }

    /// The positions in `order` of batch `index`'s examples (fewer than `batchSize` in a last,
    /// partial batch).
    public func batchRows(_ index: Int, order: [Int]) -> Range<Int> {
        let start = index * batchSize
        return start..<Swift.max(start, Swift.min(start + batchSize, order.count))
    }

    /// Batch `index`'s images, scaled, written row after row at `out` (room for
    /// `batchRows(index, order:).count` images): for a caller that keeps its own buffer, such as
    /// a planned step's joined batch of real and generated images, which then needs no copy.
    public func gatherImages(_ index: Int, order: [Int], into out: UnsafeMutablePointer<Float>) {
        let rows = batchRows(index, order: order)
        guard !rows.isEmpty else { return }
        let hw = dataset.height * dataset.width
        let (divisor, shift) = scaling.divisorAndShift
        // In halves on two threads from 64 rows: the rows lie at random in tens of megabytes, and
        // each thread's misses overlap its own (the mlp's batch took 31–35 µs instead of 44–46 on
        // one thread, `gan bench train --trace`; the step 1.013 and 1.017×, `--alternate`).
        dataset.pixels.withUnsafeBufferPointer { px in
            order.withUnsafeBufferPointer { o in
                Parallel.forChunks(rows.count, grain: 32) { part in
                    gan_gather_scaled_bytes(px.baseAddress!, o.baseAddress! + rows.lowerBound + part.lowerBound, part.count, hw, divisor,
                                            shift, out + part.lowerBound * hw)
                }
            }
        }
    }

    /// Batch `index`'s labels.
    public func labels(_ index: Int, order: [Int]) -> [Int] {
        batchRows(index, order: order).map { Int(dataset.labels[order[$0]]) }
    }
}
