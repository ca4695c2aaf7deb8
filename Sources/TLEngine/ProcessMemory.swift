import CKernels
import Foundation

/// Process-wide allocator settings: the caller's choice (the CLI makes it once, at start), since
/// they change how every later allocation in the process behaves. Call before other threads
/// allocate.
public enum ProcessMemory {
    /// Makes the process keep freed memory for reuse (glibc: one arena, no mmap for large blocks,
    /// no trimming), for a process that frees and allocates the same large buffers over and over.
    /// - Returns: whether the allocator took the settings (false where it has no such knobs).
    @discardableResult
    public static func keepFreedMemoryForReuse() -> Bool { tl_keep_freed_memory() != 0 }

    /// `keepFreedMemoryForReuse()`, and the heap grown ahead by a quarter of the machine's memory
    /// (at most 1 GiB of address space, nothing touched) that the kernel backs with transparent
    /// huge pages as the process first writes it. Loading a model writes its weights three times
    /// over (the file's tensors, BatchNorm folded, GEMM panels packed); in 4 KB pages that is one
    /// fault per page, 10 600 for MobileNetV2, a fifth of a one-image run's CPU time, and in
    /// 2 MB pages a few hundred.
    /// - Returns: the bytes in huge pages (0 where the system has no such knobs: then the first
    ///   setting alone, if it took).
    @discardableResult
    public static func useHugePages() -> Int {
        let quarter = Int(ProcessInfo.processInfo.physicalMemory / 4)
        let advised = tl_heap_in_huge_pages(min(quarter, 1 << 30))
        if advised == 0 { keepFreedMemoryForReuse() }
        return advised
    }
}
