import CKernels
import Foundation

/// Threads the engine's parallel loops run on, the caller included (one per core, or `TLHUB_THREADS`).
package var engineThreads: Int { Int(tl_parallel_threads()) }

/// Runs `body(i)` for `i in 0..<count` on all cores when the work is large enough.
@inline(__always)
package func parallelFor(_ count: Int, work: Int, _ body: (Int) -> Void) {
    if count > 1 && work >= 32_768 {
        concurrentPerform(iterations: count, body)
    } else {
        for i in 0..<count { body(i) }
    }
}

/// Splits `0..<count` into up to four contiguous chunks per core and runs them concurrently
/// (more chunks than cores, so a core the host slows down takes fewer of them).
@inline(__always)
package func parallelChunks(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
    let chunks = (work >= 65_536 && count > 1) ? min(4 * engineThreads, count) : 1
    if chunks == 1 { body(0..<count); return }
    concurrentPerform(iterations: chunks) { c in
        let start = count * c / chunks, end = count * (c + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Runs `body(i)` for `i in 0..<iterations` on the engine's thread pool.
@inline(__always)
package func concurrentPerform(iterations: Int, _ body: (Int) -> Void) {
    concurrentPerform(iterations: iterations) { index, _ in body(index) }
}

/// Runs `body(i, thread)` for `i in 0..<iterations` on the engine's thread pool (`CKernels`'
/// `tl_parallel_for`); `thread` in `0..<engineThreads` names the thread running the iteration,
/// so each can use its own part of a scratch buffer.
///
/// The iterations write disjoint memory and the call returns only after all of them finish,
/// so the non-escaping closure (capturing raw pointers) cannot race or outlive the call.
package func concurrentPerform(iterations: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
    withoutActuallyEscaping(body) { escapable in
        var closure = escapable
        withUnsafeMutablePointer(to: &closure) { pointer in
            tl_parallel_for(Int32(iterations), { context, index, thread in
                context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(index), Int(thread))
            }, pointer)
        }
    }
}
