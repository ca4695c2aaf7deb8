#ifndef TLHUB_CHDF5_SHIM_H
#define TLHUB_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// HDF5 hides its property lists and native types behind macros that expand to global ids
// (which must be read after H5open). Swift cannot see those macros, so wrap them.
static inline hid_t tl_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t tl_H5P_FILE_ACCESS(void) { H5open(); return H5P_FILE_ACCESS; }
static inline hid_t tl_H5P_FILE_CREATE(void) { H5open(); return H5P_FILE_CREATE; }
static inline hid_t tl_H5P_DATASET_CREATE(void) { H5open(); return H5P_DATASET_CREATE; }
static inline hid_t tl_H5P_GROUP_CREATE(void) { H5open(); return H5P_GROUP_CREATE; }
static inline hid_t tl_H5P_LINK_CREATE(void) { H5open(); return H5P_LINK_CREATE; }
static inline hid_t tl_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t tl_H5T_NATIVE_FLOAT(void) { H5open(); return H5T_NATIVE_FLOAT; }
static inline hid_t tl_H5T_NATIVE_DOUBLE(void) { H5open(); return H5T_NATIVE_DOUBLE; }
static inline hid_t tl_H5T_NATIVE_INT64(void) { H5open(); return H5T_NATIVE_INT64; }
static inline hid_t tl_H5T_NATIVE_INT32(void) { H5open(); return H5T_NATIVE_INT32; }
static inline hid_t tl_H5T_NATIVE_UINT16(void) { H5open(); return H5T_NATIVE_UINT16; }
static inline hid_t tl_H5T_NATIVE_UINT8(void) { H5open(); return H5T_NATIVE_UINT8; }
static inline hid_t tl_H5T_C_S1(void) { H5open(); return H5T_C_S1; }
static inline hid_t tl_H5T_IEEE_F32LE(void) { H5open(); return H5T_IEEE_F32LE; }
static inline hid_t tl_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline size_t tl_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline unsigned tl_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned tl_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned tl_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned tl_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

static inline hid_t tl_H5T_STD_U16LE(void) { H5open(); return H5T_STD_U16LE; }
static inline hid_t tl_H5T_IEEE_F64LE(void) { H5open(); return H5T_IEEE_F64LE; }
static inline hid_t tl_H5P_DATASET_XFER(void) { H5open(); return H5P_DATASET_XFER; }

/// Copies the messages of HDF5's current error stack (innermost first, "; "-separated) into
/// `buffer`, then clears the stack. Written in C because H5Ewalk2 wants a C callback.
static herr_t tl_H5_collect_error(unsigned n, const H5E_error2_t *entry, void *context) {
    char *buffer = ((char **)context)[0];
    size_t capacity = (size_t)((char **)context)[1];
    size_t used = strlen(buffer);
    const char *text = entry->desc ? entry->desc : "";
    if (*text == 0 || used + 3 >= capacity) return 0;
    // The innermost messages repeat the outer ones in more detail; skip exact repeats.
    if (strstr(buffer, text) != NULL) return 0;
    snprintf(buffer + used, capacity - used, "%s%s", used ? "; " : "", text);
    (void)n;
    return 0;
}

static inline void tl_H5_error_message(char *buffer, size_t capacity) {
    if (capacity == 0) return;
    buffer[0] = 0;
    char *context[2] = { buffer, (char *)capacity };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, tl_H5_collect_error, context);
    H5Eclear2(H5E_DEFAULT);
}

// MARK: - Crash-isolated probe
//
// libhdf5 1.10 trusts the file's metadata: some corrupt files make it read or write out of bounds
// (a segfault, not an error). Before tlhub opens a file for real, a forked child walks all of
// its metadata (every object, attribute and chunk index) with the same library; a child that
// dies from a signal or hangs marks the file as damaged and the parent never touches it.

static herr_t tl_probe_attribute(hid_t location, const char *name, const H5A_info_t *info, void *context) {
    (void)info; (void)context;
    hid_t attribute = H5Aopen(location, name, H5P_DEFAULT);
    if (attribute < 0) return 0;
    hid_t type = H5Aget_type(attribute);
    hid_t space = H5Aget_space(attribute);
    if (type >= 0 && space >= 0) {
        hssize_t count = H5Sget_simple_extent_npoints(space);
        size_t size = H5Tget_size(type);
        if (count > 0 && count < (1 << 24) && size > 0 && size < (1 << 20)) {
            if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
                hid_t memory = H5Tcopy(H5T_C_S1);
                H5Tset_size(memory, H5T_VARIABLE);
                char **strings = calloc((size_t)count, sizeof(char *));
                if (strings && H5Aread(attribute, memory, strings) >= 0) H5Dvlen_reclaim(memory, space, H5P_DEFAULT, strings);
                free(strings);
                H5Tclose(memory);
            } else if ((size_t)count * size < (1u << 28)) {
                void *buffer = malloc((size_t)count * size);
                if (buffer) H5Aread(attribute, type, buffer);
                free(buffer);
            }
        }
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Aclose(attribute);
    return 0;
}

static herr_t tl_probe_object(hid_t root, const char *name, const H5O_info_t *info, void *context) {
    (void)info; (void)context;
    hid_t object = H5Oopen(root, name, H5P_DEFAULT);
    if (object < 0) return 0;
    H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, NULL, tl_probe_attribute, NULL);
    if (H5Iget_type(object) == H5I_DATASET) {
        hid_t space = H5Dget_space(object);
        hid_t type = H5Dget_type(object);
        hid_t create = H5Dget_create_plist(object);
        // Contiguous data is one bounds-checked read; chunked data walks an index that may be
        // corrupt, so read it here (up to 256 MB).
        if (space >= 0 && type >= 0 && create >= 0 && H5Pget_layout(create) == H5D_CHUNKED) {
            hssize_t count = H5Sget_simple_extent_npoints(space);
            size_t size = H5Tget_size(type);
            if (count > 0 && size > 0 && size <= 16 && (size_t)count * size < (1u << 28)) {
                void *buffer = malloc((size_t)count * size);
                if (buffer) H5Dread(object, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
                free(buffer);
            }
        }
        if (create >= 0) H5Pclose(create);
        if (type >= 0) H5Tclose(type);
        if (space >= 0) H5Sclose(space);
    }
    H5Oclose(object);
    return 0;
}

/// Walks every object of the file at `path` (or of the in-memory `image` when not NULL) in a
/// forked child. Returns 0 when the child finished, the signal number when it crashed, -1 when
/// it hung for `seconds`, -2 when fork failed (the caller then opens the file unprobed).
static inline int tl_H5_probe(const char *path, const void *image, size_t image_size, unsigned seconds) {
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) return -2;
    if (child == 0) {
        // Die quietly: the parent reports the crash (the Swift runtime's backtracer would print).
        int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGTRAP };
        for (unsigned i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
        alarm(seconds);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        hid_t access = H5Pcreate(H5P_FILE_ACCESS);
        if (image != NULL) {
            H5Pset_fapl_core(access, 1 << 20, 0);
            H5Pset_file_image(access, (void *)image, image_size);
        }
        hid_t file = H5Fopen(path, H5F_ACC_RDONLY, access);
        if (file >= 0) {
            H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, tl_probe_object, NULL, H5O_INFO_BASIC);
            H5Fclose(file);
        }
        _exit(0);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return -2;
    }
    if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGALRM ? -1 : WTERMSIG(status);
    return 0;
}

/// Turns off HDF5's automatic printing of its error stack; errors are read and thrown instead.
static inline void tl_H5_silence_errors(void) { H5open(); H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
