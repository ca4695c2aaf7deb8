#ifndef TLHUB_CHDF5_SHIM_H
#define TLHUB_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>
#include <stdio.h>
#include <string.h>

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

/// Turns off HDF5's automatic printing of its error stack; errors are read and thrown instead.
static inline void tl_H5_silence_errors(void) { H5open(); H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
