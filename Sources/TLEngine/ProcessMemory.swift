import CKernels
import Foundation

/// Process-wide allocator settings: the caller's choice (the CLI makes it once, at start), since
/// they change how every later allocation in the process behaves. Call before other threads
/// allocate.
public enum ProcessMemory {
    /// Makes the process keep freed memory for reuse (glibc: one arena, no mmap for large blocks,
    /// no trimming). Training frees and allocates the same large tensors every step (activations,
    /// gradients, tens of MB each); glibc hands such blocks back to the kernel at once, and a
    /// thread's arena cannot hold them at all, so each step faulted in fresh zeroed pages: 600 000
    /// faults in three epochs of AlexNet, a sixth of the CPU time.
    /// - Returns: whether the allocator took the settings (false where it has no such knobs).
    @discardableResult
    public static func keepFreedMemoryForReuse() -> Bool { tl_keep_freed_memory() != 0 }

    /// `keepFreedMemoryForReuse()`, and the heap grown ahead by a quarter of the machine's memory
    /// (at most 1 GiB of address space, nothing touched) that the kernel backs with transparent
    /// huge pages as the process first writes it. Loading a model writes its weights three times
    /// over (the file's tensors, BatchNorm folded, GEMM panels packed); in 4 KB pages that is one
    /// fault per page (10 600 for MobileNetV2), and in 2 MB pages a few hundred.
    /// - Returns: the bytes in huge pages (0 where the system has no such knobs: then the first
    ///   setting alone, if it took).
    @discardableResult
    public static func useHugePages() -> Int {
        Int(tl_heap_in_huge_pages(min(Int(ProcessInfo.processInfo.physicalMemory / 4), 1 << 30)))
    }
}
