// Process-wide allocator settings for long training runs.
#include "CKernels.h"

#include <stdlib.h>  // defines __GLIBC__ on glibc
#if defined(__GLIBC__)
#include <malloc.h>
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
