"""Build a Keras MobileNetV2 (keras.applications layer names) with PyTorch-style symmetric padding and
BN eps=1e-5, load torchvision's ImageNet mobilenet_v2-b0353104.pth into it (no torch needed).
Input: RGB in [0,1] normalised with ImageNet mean/std (torchvision convention)."""
import sys, numpy as np, keras
from keras import layers
sys.path.insert(0, __file__.rsplit('/', 1)[0])
from read_legacy_pth import load

def build(include_top=True):
    eps = 1e-5
    inp = keras.Input((224, 224, 3))
    def cbr(x, f, k, s, name, bn, relu=True, dw=False):
        if s == 2: x = layers.ZeroPadding2D(((1, 1), (1, 1)), name=name + '_pad')(x); pad = 'valid'
        else: pad = 'same'
        if dw: x = layers.DepthwiseConv2D(k, strides=s, padding=pad, use_bias=False, name=name)(x)
        else: x = layers.Conv2D(f, k, strides=s, padding=pad, use_bias=False, name=name)(x)
        x = layers.BatchNormalization(epsilon=eps, momentum=0.999, name=bn)(x)
        return layers.ReLU(6.0, name=name + '_relu')(x) if relu else x
    x = cbr(inp, 32, 3, 2, 'Conv1', 'bn_Conv1')
    x = cbr(x, 32, 3, 1, 'expanded_conv_depthwise', 'expanded_conv_depthwise_BN', dw=True)
    x = cbr(x, 16, 1, 1, 'expanded_conv_project', 'expanded_conv_project_BN', relu=False)
    cin, b = 16, 1
    for t, c, n, s in [(6,24,2,2),(6,32,3,2),(6,64,4,2),(6,96,3,1),(6,160,3,2),(6,320,1,1)]:
        for i in range(n):
            st = s if i == 0 else 1; p = f'block_{b}_'; y = x
            y = cbr(y, cin * t, 1, 1, p + 'expand', p + 'expand_BN')
            y = cbr(y, 0, 3, st, p + 'depthwise', p + 'depthwise_BN', dw=True)
            y = cbr(y, c, 1, 1, p + 'project', p + 'project_BN', relu=False)
            x = layers.Add(name=p + 'add')([x, y]) if (st == 1 and cin == c) else y
            cin = c; b += 1
    x = cbr(x, 1280, 1, 1, 'Conv_1', 'Conv_1_bn')
    x = layers.GlobalAveragePooling2D(name='global_average_pooling2d')(x)
    if include_top: x = layers.Dense(1000, name='predictions')(x)  # logits
    return keras.Model(inp, x, name='mobilenetv2_1.00_224_torchvision')

def load_weights(model, pth):
    sd = load(pth)
    def conv(name, key):
        w = sd[key + '.weight']
        l = model.get_layer(name)
        if isinstance(l, layers.DepthwiseConv2D): l.set_weights([w.transpose(2, 3, 0, 1)])
        else: l.set_weights([w.transpose(2, 3, 1, 0)])
    def bn(name, key):
        model.get_layer(name).set_weights([sd[key + s] for s in ('.weight', '.bias', '.running_mean', '.running_var')])
    conv('Conv1', 'features.0.0'); bn('bn_Conv1', 'features.0.1')
    conv('expanded_conv_depthwise', 'features.1.conv.0.0'); bn('expanded_conv_depthwise_BN', 'features.1.conv.0.1')
    conv('expanded_conv_project', 'features.1.conv.1'); bn('expanded_conv_project_BN', 'features.1.conv.2')
    for b in range(1, 17):
        k = f'features.{b+1}.conv'; p = f'block_{b}_'
        conv(p + 'expand', k + '.0.0'); bn(p + 'expand_BN', k + '.0.1')
        conv(p + 'depthwise', k + '.1.0'); bn(p + 'depthwise_BN', k + '.1.1')
        conv(p + 'project', k + '.2'); bn(p + 'project_BN', k + '.3')
    conv('Conv_1', 'features.18.0'); bn('Conv_1_bn', 'features.18.1')
    if any(l.name == 'predictions' for l in model.layers):
        model.get_layer('predictions').set_weights([sd['classifier.1.weight'].T, sd['classifier.1.bias']])
    return model

if __name__ == '__main__':
    m = load_weights(build(), sys.argv[1]); m.save(sys.argv[2]); print('saved', sys.argv[2], m.count_params())
