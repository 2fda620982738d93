#!/usr/bin/python3
"""Writes the fuzz_onnx seeds: three tiny models that cover every op lowering
accepts, typed and raw initializers, dynamic and fixed batch, opsets 11..17.

Usage: /usr/bin/python3 tests/fuzz/gen_onnx_seeds.py [OUT_DIR]
(default: tests/fuzz/corpus/onnx). Uses Debian's python3-onnx only; the
weights are small fixed patterns, so the files are a few KB and the output
is the same on every run.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def weights(shape, k=0):
    n = int(np.prod(shape))
    return (((np.arange(n) * 7 + k) % 11 - 5) * 0.1).astype(np.float32).reshape(shape)


def raw(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def typed(name, a, dtype=TensorProto.FLOAT):
    a = np.asarray(a)
    return helper.make_tensor(name, dtype, a.shape, a.flatten().tolist(), raw=False)


def model(nodes, inputs, outputs, inits, opset, name):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, producer_name='lipsync-fuzz-seed',
                          opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def small_net():
    """x[B,2,4,4] -> Conv (typed W, double bias) -> BN (raw) -> Relu -> Reshape
    to [B,48] with the shape from Concat(Unsqueeze(Gather(Shape(x), 0)),
    Cast(Constant int32 [-1])). Opset 11, dynamic batch."""
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 2, 4, 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['batch', 48])
    inits = [
        typed('W', weights((3, 2, 3, 3))),
        typed('Bd', [0.5, -0.25, 1.0], TensorProto.DOUBLE),
        raw('scale', np.array([1.5, 0.5, 2.0], np.float32)),
        raw('bias', np.array([0.1, -0.2, 0.3], np.float32)),
        raw('mean', np.array([0.2, -0.1, 0.4], np.float32)),
        raw('var', np.array([0.25, 4.0, 1.0], np.float32)),
    ]
    nodes = [
        helper.make_node('Cast', ['Bd'], ['B'], to=TensorProto.FLOAT),
        helper.make_node('Conv', ['x', 'W', 'B'], ['c'], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['bn'],
                         epsilon=1e-5),
        helper.make_node('Relu', ['bn'], ['r']),
        helper.make_node('Shape', ['x'], ['s']),
        helper.make_node('Constant', [], ['zero'], value=typed('zv', 0, TensorProto.INT64)),
        helper.make_node('Gather', ['s', 'zero'], ['b'], axis=0),
        helper.make_node('Unsqueeze', ['b'], ['b1'], axes=[0]),
        helper.make_node('Constant', [], ['m1'],
                         value=typed('m1v', np.array([-1], np.int32), TensorProto.INT32)),
        helper.make_node('Cast', ['m1'], ['m1l'], to=TensorProto.INT64),
        helper.make_node('Concat', ['b1', 'm1l'], ['shape'], axis=0),
        helper.make_node('Reshape', ['r', 'shape'], ['y']),
    ]
    return model(nodes, [x], [y], inits, 11, 'small_net')


def mini_unet():
    """The UNet's interface ([B,6,320,320] + [B,32,16,16] -> [B,3,320,320]) with
    a few channels: strided and grouped convs, Resize by scales and by sizes,
    Concat, a zero Pad (dropped) and a real one, residual Add, Sigmoid,
    Identity. Opset 13, dynamic batch."""
    v = helper.make_tensor_value_info('visual', TensorProto.FLOAT, ['B', 6, 320, 320])
    a = helper.make_tensor_value_info('audio', TensorProto.FLOAT, ['B', 32, 16, 16])
    o = helper.make_tensor_value_info('out', TensorProto.FLOAT, ['B', 3, 320, 320])
    inits = [
        raw('w1', weights((2, 6, 3, 3))), raw('b1', weights((2,), 1)),
        raw('w2', weights((2, 32, 1, 1), 2)),
        raw('w3', weights((4, 2, 3, 3), 3)),
        raw('w4', weights((4, 4, 1, 1), 4)),
        raw('w5', weights((3, 4, 3, 3), 5)), raw('b5', weights((3,), 6)),
        raw('roi', np.zeros(0, np.float32)),
        raw('scales10', np.array([1, 1, 10, 10], np.float32)),
        raw('scales2', np.array([1, 1, 2, 2], np.float32)),
        raw('no_scales', np.zeros(0, np.float32)),
        raw('zero_pads', np.zeros(8, np.int64)),
        raw('pads', np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        raw('pad_value', np.array(0.0, np.float32)),
    ]
    nodes = [
        helper.make_node('Conv', ['visual', 'w1', 'b1'], ['v1'], kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node('Relu', ['v1'], ['v1r']),
        helper.make_node('Conv', ['audio', 'w2'], ['a1'], kernel_shape=[1, 1]),
        helper.make_node('Resize', ['a1', 'roi', 'scales10'], ['a2'], mode='nearest'),
        helper.make_node('Concat', ['v1r', 'a2'], ['cat'], axis=1),
        helper.make_node('Pad', ['cat', 'zero_pads', 'pad_value'], ['cat0'], mode='constant'),
        helper.make_node('Conv', ['cat0', 'w3'], ['c3'], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         group=2),
        helper.make_node('Conv', ['c3', 'w4'], ['c4'], kernel_shape=[1, 1]),
        helper.make_node('Add', ['c4', 'cat'], ['res']),
        helper.make_node('Relu', ['res'], ['resr']),
        helper.make_node('Identity', ['resr'], ['id']),
        helper.make_node('Resize', ['id', 'roi', 'scales2'], ['up'], mode='linear',
                         coordinate_transformation_mode='half_pixel'),
        helper.make_node('Pad', ['up', 'pads', 'pad_value'], ['padded'], mode='constant'),
        helper.make_node('Conv', ['padded', 'w5', 'b5'], ['c5'], kernel_shape=[3, 3]),
        helper.make_node('Sigmoid', ['c5'], ['out']),
    ]
    return model(nodes, [v, a], [o], inits, 13, 'mini_unet')


def mini_encoder():
    """The encoder's interface ([1,1,80,16] -> [1,512], batch fixed to 1):
    Conv to [1,8,16,4], then Reshape to [1,512] by a shape computed with
    Shape, Slice, Mul, Div, Sub, ConstantOfShape, Transpose and Squeeze.
    Opset 17."""
    m = helper.make_tensor_value_info('mel', TensorProto.FLOAT, [1, 1, 80, 16])
    e = helper.make_tensor_value_info('emb', TensorProto.FLOAT, [1, 512])
    inits = [
        raw('w', weights((8, 1, 5, 4))), raw('b', weights((8,), 1)),
        raw('st', np.array([0], np.int64)), raw('en', np.array([1], np.int64)),
        raw('k2', np.array([2], np.int64)), raw('k1', np.array([1], np.int64)),
        raw('k1024', np.array([1024], np.int64)),
        raw('one_shape', np.array([1], np.int64)),
        raw('sq_axes', np.array([1], np.int64)),
    ]
    nodes = [
        helper.make_node('Conv', ['mel', 'w', 'b'], ['c'], kernel_shape=[5, 4], strides=[5, 4]),
        helper.make_node('Relu', ['c'], ['r']),
        helper.make_node('Shape', ['r'], ['s']),
        helper.make_node('Slice', ['s', 'st', 'en'], ['bsz']),             # [1]
        helper.make_node('Mul', ['k1024', 'k1'], ['n1024']),
        helper.make_node('Div', ['n1024', 'k2'], ['n512']),                # [512]
        helper.make_node('Sub', ['n512', 'st'], ['n']),
        helper.make_node('ConstantOfShape', ['one_shape'], ['ones'],
                         value=typed('v', [1], TensorProto.INT64)),
        helper.make_node('Mul', ['bsz', 'ones'], ['bsz1']),
        helper.make_node('Concat', ['bsz1', 'n'], ['shape2'], axis=0),   # [1, 512]
        helper.make_node('Unsqueeze', ['shape2', 'st'], ['shape2u']),     # [1, 2]
        helper.make_node('Transpose', ['shape2u'], ['shape2t'], perm=[1, 0]),
        helper.make_node('Squeeze', ['shape2t', 'sq_axes'], ['shape']),   # [2]
        helper.make_node('Reshape', ['r', 'shape'], ['flat']),
        helper.make_node('Flatten', ['flat'], ['emb'], axis=1),
    ]
    return model(nodes, [m], [e], inits, 17, 'mini_encoder')


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'corpus', 'onnx')
    os.makedirs(out, exist_ok=True)
    for name, m in [('small_net_op11', small_net()), ('mini_unet_op13', mini_unet()),
                    ('mini_encoder_op17', mini_encoder())]:
        path = os.path.join(out, name + '.onnx')
        onnx.save(m, path)
        print(path, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    main()
