#ifndef TLHUB_CHDF5_SHIM_H
#define TLHUB_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>

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
static inline hid_t tl_H5T_IEEE_F16LE(void) { H5open(); return H5T_IEEE_F16LE; }
static inline hid_t tl_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline size_t tl_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline unsigned tl_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned tl_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned tl_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned tl_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

/// Turns off HDF5's automatic printing of its error stack; errors are read and thrown instead.
static inline void tl_H5_silence_errors(void) { H5open(); H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
