"""Read a legacy (non-zip) PyTorch .pth state_dict into numpy arrays, without torch."""
import pickle, struct, collections, numpy as np, sys

DT = {'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
      'LongStorage': np.int64, 'IntStorage': np.int32, 'ByteStorage': np.uint8}

class _Storage:
    def __init__(self, dtype, key, numel): self.dtype, self.key, self.numel, self.data = dtype, key, numel, None

def _rebuild_tensor_v2(storage, offset, size, stride, *a):
    return ('T', storage, offset, tuple(size), tuple(stride))

class _U(pickle.Unpickler):
    storages = {}
    def find_class(self, mod, name):
        if name == '_rebuild_tensor_v2' or name == '_rebuild_tensor': return _rebuild_tensor_v2
        if mod == 'collections' and name == 'OrderedDict': return collections.OrderedDict
        if mod == 'torch' and name in DT: return name
        return super().find_class(mod, name)
    def persistent_load(self, pid):
        typ, stype, key, loc, numel = pid[:5]
        if key not in self.storages: self.storages[key] = _Storage(DT[stype], key, numel)
        return self.storages[key]

def load(path):
    with open(path, 'rb') as f:
        assert pickle.load(f) == 0x1950a86a20f9469cfc6c  # legacy magic
        pickle.load(f); pickle.load(f)                    # protocol version, sys info
        u = _U(f, encoding='latin1'); u.storages = {}
        obj = u.load()
        keys = pickle.load(f)
        for k in keys:
            s = u.storages[k]
            n, = struct.unpack('<q', f.read(8))
            s.data = np.frombuffer(f.read(n * np.dtype(s.dtype).itemsize), dtype=s.dtype)
    out = collections.OrderedDict()
    for name, t in obj.items():
        _, s, off, size, stride = t
        it = np.dtype(s.dtype).itemsize
        out[name] = np.lib.stride_tricks.as_strided(s.data[off:], shape=size, strides=[x * it for x in stride]).copy()
    return out

if __name__ == '__main__':
    sd = load(sys.argv[1])
    print(len(sd), 'tensors', sum(v.size for v in sd.values()), 'params')
    for k in list(sd)[:6] + list(sd)[-4:]: print(k, sd[k].shape, sd[k].dtype)
