// Process-wide allocator settings for long training runs and for start-up.
#include "CKernels.h"

#include <stdint.h>
#include <stdlib.h>  // defines __GLIBC__ on glibc
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

int tl_keep_freed_memory(void) {
#if defined(__GLIBC__)
    // One arena (a thread's arena cannot hold blocks over 64 MB, so they would be mmapped and
    // unmapped every time), no mmap for large blocks, no trimming: a freed block is reused.
    return mallopt(M_ARENA_MAX, 1) && mallopt(M_MMAP_THRESHOLD, 0x7fffffff) && mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#else
    return 0;
#endif
}

size_t tl_heap_in_huge_pages(size_t bytes) {
#if defined(__GLIBC__) && defined(__linux__) && defined(MADV_HUGEPAGE) && __GLIBC_PREREQ(2, 33)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!tl_keep_freed_memory() || bytes < huge) return 0;
    // glibc grows the heap by the top pad past what a block needs; with one arena and no mmap,
    // every block the process takes comes from that range, and without trimming it stays.
    char *begin = sbrk(0);
    if (begin == (void *)-1 || !mallopt(M_TOP_PAD, (int)(bytes > 0x40000000 ? 0x40000000 : bytes))) return 0;
    // A block larger than the free top of the heap makes glibc grow it (volatile: a compiler may
    // drop a malloc freed unused).
    void *volatile block = malloc(mallinfo2().keepcost + 4096);
    free(block);
    mallopt(M_TOP_PAD, 128 * 1024);  // glibc's default: later growth as usual
    char *end = sbrk(0);
    uintptr_t first = ((uintptr_t)begin + huge - 1) & ~(huge - 1), last = (uintptr_t)end & ~(huge - 1);
    if (end == (void *)-1 || last <= first || madvise((void *)first, last - first, MADV_HUGEPAGE) != 0) return 0;
    return last - first;
#else
    (void)bytes;
    tl_keep_freed_memory();
    return 0;
#endif
}
