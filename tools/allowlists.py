"""Derives the TensorFlow allow-list (src/redisai/backends/tf_ops.py) from the installed TensorFlow.

    .venv/bin/python tools/allowlists.py            # rewrites tf_ops.py
    .venv/bin/python tools/allowlists.py --check    # exit 1 if tf_ops.py differs, or a measured export's
                                                    # operation is not allowed (tests/fast run this)
    .venv/bin/python tools/allowlists.py --measure  # rebuilds the real exports (minutes), prints MEASURED
    .venv/bin/python tools/allowlists.py --probe [OP ...]         # the crash probe (minutes, nice 19)
    .venv/bin/python tools/allowlists.py --probe-server [OP ...]  # the same inputs through the server's loader

The rule, applied to TensorFlow's registry of operations (every OpDef, with its inputs and attributes):
1. an operation is a candidate when TensorFlow's own Python wrapper for it lives in a module of computing
   operations (`COMPUTING_MODULES`: math, nn, array, control flow, functional, string, image, random,
   linear algebra, ...), or is one of the few computing operations named in `FROM_MIXED_MODULES` from
   modules that also hold I/O, queues, sessions or logging;
2. a candidate that has an input or attribute named like a file, path, directory, glob pattern, memory
   region or network address (`REACHES_OUT`) is dropped, whatever its module, and so are the two in
   `NEVER` (Abort ends the process; RemoteCall runs a function elsewhere);
3. the families in `DROPPED` go, each for its reason: what a served (inference) graph never holds, and
   what holds state from run to run, reads memory it never wrote, or builds tensors of any size from a
   few bytes. Real exports were measured (`MEASURED`, made by --measure: Keras applications and layers
   frozen with convert_variables_to_constants_v2, text and image preprocessing, TF1 graphs with
   while_loop/cond/TensorArray, tf.Example parsing, audio features, quantization-aware graphs): no
   dropped family appears in any of them, and --check fails if a later TensorFlow moves one of their
   operations out of the list;
4. the operations in `ABORTS` go: the crash probe (--probe) ran every remaining operation on small
   tensors of inconsistent shapes, types and attributes in a child process, and these ended it
   (SIGABRT from a CHECK, SIGSEGV, SIGFPE) or hung it. A served graph must never end the server. The
   kept ones it ended, which real exports hold (`GUARDED`), get checks from the server before them
   (src/redisai/backends/tf.py: GUARDS, ATTRIBUTE_CHECKS; --check fails for one without); --probe-server
   runs the probe's inputs through the server's loader and its runs: on 2026-12-07 (TensorFlow 2.21.0, 500
   kept operations x 600 inputs, 15 min) it ended on Enter (parallel_iterations -1: now refused at store),
   RaggedFillEmptyRows and TridiagonalSolve (now in ABORTS), and on nothing else.
Every other operation (I/O, checkpoints, datasets, summaries, Python callbacks, RPC, collectives, TPU,
variables, queues, debug dumps, ...) is refused. An operation TensorFlow adds in a later release is refused
until this script is run again and its output reviewed (and the probe run on it).

Which kept families the measured exports use (module of the operation's Python wrapper; the exports are
those of `MEASURED`, abbreviated):

    gen_array_ops, gen_math_ops, gen_nn_ops  every export
    gen_control_flow_ops   LSTM, GRU, SimpleRNN, Bidirectional (Keras RNNs lower to Enter/Merge/Switch/
                           NextIteration/Exit/LoopCond), TF1 while_loop/cond, map_fn over JPEG bytes
    gen_functional_ops     TF1 graphs with control flow v2 (While, StatelessWhile, StatelessIf); ConvNeXt
                           (StatefulPartitionedCall); Case/StatelessCase are tf.switch_case's
    gen_list_ops           Keras RNNs, map_fn, TF1 loops under control flow v2 (TensorList*)
    gen_data_flow_ops      TF1 while_loop with TensorArray (TensorArray*V3); Dynamic{Partition,Stitch}
                           are TF1 partitioned embeddings'
    gen_image_ops          tf.image preprocessing (DecodeJpeg, DecodeImage, Resize*, CropAndResize,
                           AdjustContrastv2, RGBToHSV), detection post-processing (NonMaxSuppressionV3),
                           Keras Resizing/UpSampling2D
    gen_string_ops         TextVectorization, StringLookup, TF1 text tables, tf.strings preprocessing
                           (StringLower, StaticRegexReplace, StringSplitV2, StringNGrams, StringJoin,
                           Substr, AsString, StringToHashBucketFast, UnicodeDecode, StringToNumber)
    gen_lookup_ops         StringLookup, IntegerLookup, TF1 StaticHashTable (HashTableV2,
                           LookupTableImportV2, LookupTableFindV2)
    gen_ragged_*_ops       TextVectorization (RaggedTensorToTensor)
    gen_sparse_ops         tf.Example parsing with VarLenFeature (SparseToDense, SparseReorder,
                           SparseSegmentMean of embedding_lookup_sparse)
    gen_parsing_ops        tf.Example parsing (ParseExampleV2), StringToNumber
    gen_random_ops, gen_stateless_random_ops*   VAE sampling (RandomStandardNormal, Multinomial,
                           StatelessRandomNormalV2)
    gen_spectral_ops       audio features (tf.signal.stft: RFFT)
    gen_audio_ops          speech-commands-style graphs (DecodeWav, AudioSpectrogram, Mfcc)
    gen_bitwise_ops        Keras ops.argmax (BitwiseAnd, beside gen_array_ops' Bitcast)
    gen_logging_ops        tf.image's shape checks (Assert)
    gen_array_ops' FakeQuant* and QuantizeAndDequantizeV4: quantization-aware-training exports
Kept without a measured export, as the same kind of computation: gen_linalg_ops (tf.linalg in models:
determinants, inverses, decompositions), gen_special_math_ops, gen_set_ops, gen_manip_ops (Roll),
gen_count_ops, gen_ctc_ops' decoders (CTCGreedyDecoder/CTCBeamSearchDecoder of OCR and speech models).
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "redisai" / "backends" / "tf_ops.py"

COMPUTING_MODULES = (
    "gen_array_ops", "gen_math_ops", "gen_nn_ops", "gen_control_flow_ops", "gen_functional_ops",
    "gen_string_ops", "gen_image_ops", "gen_random_ops", "gen_stateless_random_ops",
    "gen_stateless_random_ops_v2", "gen_linalg_ops", "gen_bitwise_ops", "gen_spectral_ops",
    "gen_special_math_ops", "gen_manip_ops", "gen_list_ops", "gen_set_ops", "gen_sparse_ops", "gen_ctc_ops",
    "gen_audio_ops", "gen_parsing_ops", "gen_ragged_array_ops", "gen_ragged_conversion_ops",
    "gen_ragged_math_ops", "gen_count_ops", "gen_uniform_quant_ops", "gen_lookup_ops",
)
# Mixed modules: only their computing operations. data_flow: TensorArrays (TF1 loops) and partition /
# stitch, not queues, barriers, stages or accumulators; logging: Assert, not Print, summaries or timestamps.
FROM_MIXED_MODULES = {
    "gen_data_flow_ops": re.compile(r"TensorArray\w*|DynamicPartition|DynamicStitch|ParallelDynamicStitch"),
    "gen_logging_ops": re.compile(r"Assert"),
}
# Input and attribute names that point outside the process. A regular expression's `pattern`
# (RegexReplace) and a count of `top_paths` (CTC decoders) are not such names.
REACHES_OUT = re.compile(r"file|^path$|_path$|^path_|dir|(?:^|_)glob(?:_|$)|region|address|url|host|port|socket|server",
                         re.IGNORECASE)
# Computing modules' operations that still leave the computation: Abort ends the process (the server),
# RemoteCall runs a function on another device or task.
NEVER = {"Abort", "RemoteCall"}
_WRAPPED_OP = re.compile(r'_apply_op_helper\(\s*"(\w+)"')


@dataclass(frozen=True)
class Family:
    """Operations dropped together, for one reason: by name (`names`, `pattern`) or by their OpDef (`test`)."""

    name: str
    reason: str
    names: frozenset = frozenset()
    pattern: str = ""
    test: str = ""  # "ref": a reference-typed input or output; "deprecated": the OpDef's deprecation

    def holds(self, name: str, op) -> bool:
        if name in self.names or (self.pattern and re.fullmatch(self.pattern, name)):
            return True
        if self.test == "ref":
            return any(arg.is_ref for arg in list(op.input_arg) + list(op.output_arg))
        if self.test == "deprecated":
            return op.HasField("deprecation")
        return False


# Forward computations whose names say gradient or backprop: identities in a forward pass, and the
# transposed convolutions (Keras Conv1DTranspose/Conv2DTranspose run Conv2DBackpropInput, Conv3DTranspose
# Conv3DBackpropInputV2: measured).
GRADIENT_NAMED_BUT_FORWARD = frozenset({"StopGradient", "PreventGradient", "Conv2DBackpropInput",
                                        "Conv3DBackpropInputV2"})

DROPPED = (
    Family("gradients", "backpropagation kernels, for training: a served graph computes forward. They take "
           "several tensors whose shapes must agree, and some abort the process when they do not (LRNGrad: "
           "tensor_shape.cc Check failed: d < dims(), open upstream). SymbolicGradient instantiates a function "
           "from the gradient registry; BroadcastGradientArgs and ConcatOffset are gradient helpers",
           names=frozenset({"ConcatOffset"}), pattern=r"(?!(?:%s)$)\w*(?:Grad|Backprop)\w*"
           % "|".join(sorted(GRADIENT_NAMED_BUT_FORWARD))),
    Family("training", "losses, TF1 control-flow gradient plumbing and training-time augmentation: no served "
           "graph computes a loss (the measured exports hold none)",
           names=frozenset({"L2Loss", "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
                            "CTCLoss", "CTCLossV2", "ControlTrigger", "SampleDistortedBoundingBox",
                            "SampleDistortedBoundingBoxV2", "StatelessSampleDistortedBoundingBox"})),
    Family("fused rewrites", "made by graph rewriting tools (the retired graph_transforms), never by an exporter; "
           "FusedPadConv2D aborts the process on inconsistent shapes (open upstream)",
           names=frozenset({"FusedPadConv2D", "FusedResizeAndPadConv2D"})),
    Family("quantized kernels", "the legacy graph_transforms / Intel quantization kernels and the StableHLO "
           "quantizer's uniform ones: no exporter of today writes them (quantization-aware exports hold "
           "FakeQuant* and QuantizeAndDequantizeV4, kept), and they carry TensorFlow's longest record of "
           "process aborts on malformed ranges and shapes",
           pattern=r"Quantized\w*|Requantiz\w*|QuantizeDownAndShrinkRange|QuantizeV2|Dequantize|"
                   r"UniformQuantized\w*|UniformQuantize|UniformDequantize|UniformRequantize"),
    Family("reference-typed", "TF1 reference variables' operations (a ref-typed input or output): no allowed "
           "operation makes a reference, and TF1 tables and TensorArrays have resource forms (kept)", test="ref"),
    Family("deprecated", "operations TensorFlow refuses in graphs produced after their deprecation version; "
           "the version a GraphDef claims is the client's to write", test="deprecated"),
    Family("state across runs", "tables and maps kept by the session from one run to the next: each run can "
           "grow them past BACKEND_MEMORY_LIMIT (the report's mutable hash table). Immutable HashTableV2 "
           "initialized from constants (InitializeTableV2, LookupTableImportV2: the same data again is a "
           "no-op, other data an error) is kept: TF1 text exports use it",
           pattern=r"\w*MutableHashTable\w*|\w*MutableDenseHashTable\w*|LookupTable(?:Insert|Remove|Export)\w*",
           names=frozenset({"AnonymousHashTable", "AddSparseToTensorsMap", "AddManySparseToTensorsMap",
                            "TakeManySparseFromTensorsMap"})),
    Family("uninitialized memory", "outputs whose contents the kernel never writes (Empty with init=false; "
           "FakeParam; ParallelConcat's start tensor): what the allocator held before, another model's "
           "inputs and outputs", names=frozenset({"Empty", "FakeParam", "ParallelConcat"})),
    Family("decoders of any size", "a few client bytes become a tensor of any size, on the heap rather than "
           "TensorFlow's capped allocator: ParseTensor (a TensorProto's last value repeated to fill its "
           "shape), DecodeCompressed (zlib/gzip), and the serialized sparse and variant codecs no export holds",
           names=frozenset({"ParseTensor", "SerializeTensor", "DecodeCompressed", "SerializeSparse",
                            "SerializeManySparse", "DeserializeSparse", "DeserializeManySparse",
                            "DecodeJSONExample", "RaggedTensorToVariant", "RaggedTensorFromVariant"})),
    Family("encoders", "image and audio encoders: no export returns encoded images, and their output bytes "
           "live on the heap", names=frozenset({"EncodeJpeg", "EncodeJpegVariableQuality", "EncodePng",
                                                "EncodeWav"})),
    Family("in-place and raw-only", "in-place updates and a counted loop only tf.raw_ops writes (no "
           "exporter emits InplaceUpdate/Add/Sub, DeepCopy, For) and the placement probe DeviceIndex",
           names=frozenset({"InplaceUpdate", "InplaceAdd", "InplaceSub", "DeepCopy", "For", "DeviceIndex"})),
)

# The crash probe's result (--probe, TensorFlow 2.21.0, AMD EPYC, 2 cores, 2026-12-07: 761 candidates x 120
# inputs, then the 520 then kept x 400): operations that ended its child process, what ended it, on which
# inputs; dropped, none being in a measured export. The probe ran each on small random inputs and missed
# siblings of one kernel: those tried by hand, with the crashing input, are listed with it. Operations of
# the dropped families it ended too: LRNGrad, FusedPadConv2D, Conv2DBackpropFilter, Conv3DBackpropFilterV2,
# DepthwiseConv2dNativeBackprop{Filter,Input}, FakeQuantWithMinMaxVarsPerChannelGradient,
# RaggedTensorToVariantGradient, Dequantize, QuantizeV2, QuantizedAvgPool, QuantizedMaxPool,
# QuantizedMatMulWithBiasAndRelu.
ABORTS: dict[str, str] = {
    "ConjugateTranspose": "SIGABRT (mkl_util.h Check failed: dims_tf_order.size() > 0): float32[] int64[0]",
    "Conv": "SIGABRT: strides [1], dilations [0, 2, 1, 3], explicit_paddings [-1, 0, 0, 1, 2]",
    "IRFFT": "SIGABRT (DUCC: axis length mismatch): complex64[2, 1] int32[1]",
    "IRFFT2D": "SIGABRT (DUCC): complex64[2, 2, 1] int32[2]",
    "IRFFT3D": "IRFFT's kernel (by hand)",
    "IRFFTND": "IRFFT's kernel (by hand)",
    "RFFTND": "RFFT's kernel, fft_length and axes from the graph (by hand)",
    "FFTND": "RFFT's kernel, fft_length and axes from the graph (by hand)",
    "IFFTND": "RFFT's kernel, fft_length and axes from the graph (by hand)",
    "ParseExample": "SIGABRT: Nsparse 2, Ndense 1, keys of ranks 3 to 5 (ParseExampleV2, which exports hold, did not)",
    "QuantizeAndDequantizeV3": "SIGABRT: input_min float32[2] for axis -1 (V4, which exports hold, did not)",
    "RaggedGather": "SIGABRT: int32[1] int8[1] int32[0], PARAMS_RAGGED_RANK 1",
    "RandomPoissonV2": "a kernel that ran over 120 s on int32[1] float64[2, 2, 2, 2] (one kernel: no deadline stops it)",
    "TensorListScatterIntoExistingList": "SIGSEGV: float32[3] int32[3] into a list of 2",
    "TensorScatterMin": "SIGABRT (tensor_shape.cc Check failed: d < dims()): float32[2, 1, 2, 3] int32[2, 1, 2, 3] float32[2]",
    "TensorScatterSub": "SIGABRT (tensor_shape.cc Check failed: d < dims()): uint8[1, 2, 1] int64[2, 3, 1, 1, 1] uint8[2, 3, 1]",
    "TensorScatterAdd": "TensorScatterSub's input (by hand)",
    "TensorScatterMax": "TensorScatterSub's input (by hand)",
    "TensorScatterUpdate": "TensorScatterSub's input (by hand)",
    "ScatterNd": "TensorScatterSub's input (by hand)",
    "RaggedFillEmptyRows": "SIGABRT (--probe-server): int64[1] bool[1] int64[] bool[]",
    "TridiagonalSolve": "SIGSEGV (--probe-server): float64[3, 2] float64[2, 0], partial_pivoting",
}
# Kept operations the probe ended too, which real exports hold: the server guards each (tf.py's _GUARDS,
# checks in the graph before the node, and _ATTRIBUTE_CHECKS at store). --probe-server runs the probe's
# inputs through the server's loader: none of these ends it.
GUARDED: dict[str, str] = {
    "TensorListGetItem": "SIGABRT (tensor.cc Check failed: 1 == NumElements()): an index of 6 elements (Keras RNNs)",
    "TensorListSetItem": "SIGSEGV: index -1 with resize_if_index_out_of_bounds (Keras RNNs)",
    "RFFT": "SIGABRT (DUCC: axis length mismatch): fft_length 0 or below (tf.signal.stft)",
    "RFFT2D": "RFFT's kernel (by hand: fft_length [1, 0])",
    "RFFT3D": "RFFT's kernel",
    "FakeQuantWithMinMaxVarsPerChannel": "SIGABRT (Check failed: d >= 0): a scalar input (quantization-aware exports)",
    "Conv2DBackpropInput": "SIGABRT: strides [2], dilations [3, 0, 1, 3] (Conv1DTranspose, Conv2DTranspose)",
    "Conv3DBackpropInputV2": "SIGABRT: empty dilations, inputs of ranks 4 and 5 (Conv3DTranspose)",
    "AudioSpectrogram": "SIGSEGV: window_size -1, stride -1 (speech models; in a loop's body no import checks it)",
    "Enter": "SIGFPE: parallel_iterations -1 (--probe-server; TF1 loops, Keras RNNs)",
    "While": "Enter's parallel_iterations (not probed: a function attribute)",
    "StatelessWhile": "Enter's parallel_iterations (not probed: a function attribute)",
}

# Operation types of real exports (--measure, TensorFlow 2.21.0 / Keras 3): every one must stay allowed.
MEASURED: dict[str, list[str]] = {
    "MobileNetV2": """
        AddV2 BiasAdd Const Conv2D DepthwiseConv2dNative Identity MatMul Mean Mul NoOp Pad Placeholder Relu6
        Rsqrt Softmax Sub
    """.split(),
    "ResNet50": """
        AddV2 BiasAdd Const Conv2D Identity MatMul MaxPool Mean Mul NoOp Pad Placeholder Relu Reshape Rsqrt
        Softmax Squeeze Sub
    """.split(),
    "EfficientNetB0": """
        AddV2 BiasAdd Const Conv2D DepthwiseConv2dNative Identity IdentityN MatMul Maximum Mean Mul NoOp Pack
        Pad Placeholder RealDiv Reshape Rsqrt Shape Sigmoid Softmax Sqrt Squeeze StridedSlice Sub
    """.split(),
    "EfficientNetV2B0": """
        AddV2 BiasAdd Const Conv2D DepthwiseConv2dNative Identity IdentityN MatMul Maximum Mean Mul NoOp Pack
        Placeholder RealDiv Reshape Rsqrt Shape Sigmoid Softmax Sqrt Squeeze StridedSlice Sub
    """.split(),
    "DenseNet121": """
        AddV2 AvgPool BiasAdd ConcatV2 Const Conv2D Identity MatMul MaxPool Mean Mul NoOp Pad Placeholder Relu
        Reshape Rsqrt Softmax Sub
    """.split(),
    "VGG16": """
        BiasAdd Const Conv2D Identity MatMul MaxPool NoOp Pack Placeholder Relu Reshape Shape Softmax Squeeze
        StridedSlice
    """.split(),
    "MobileNetV3Small": """
        AddV2 BiasAdd Const Conv2D DepthwiseConv2dNative Identity Mean Mul NoOp Pack Pad Placeholder RealDiv
        Relu Relu6 Reshape Rsqrt Shape Softmax Squeeze StridedSlice Sub
    """.split(),
    "ConvNeXtTiny": """
        AddV2 BiasAdd ConcatV2 Const Conv2D Erfc GatherV2 Identity MatMul Maximum Mean Mul Neg NoOp Pack
        Placeholder Prod RealDiv Reshape Rsqrt Shape Softmax Sqrt SquaredDifference Squeeze
        StatefulPartitionedCall StopGradient Sub Transpose
    """.split(),
    "NASNetMobile": """
        AddV2 AvgPool BiasAdd ConcatV2 Const Conv2D DepthwiseConv2dNative Identity MatMul MaxPool Mean Mul
        NoOp Pad Placeholder Relu Rsqrt Softmax StridedSlice Sub
    """.split(),
    "InceptionV3": """
        AddV2 AvgPool BiasAdd ConcatV2 Const Conv2D Identity MatMul MaxPool Mean Mul NoOp Placeholder Relu
        Reshape Rsqrt Softmax Sub
    """.split(),
    "Xception": """
        AddV2 BiasAdd Const Conv2D DepthwiseConv2dNative Identity MatMul MaxPool Mean Mul NoOp Placeholder
        Relu Rsqrt Softmax Sub
    """.split(),
    "LSTM": """
        AddV2 BiasAdd Const Enter Exit Fill Identity Less LogicalAnd LoopCond MatMul Max Merge Mul
        NextIteration NoOp Pack Placeholder Range Shape Sigmoid Split StridedSlice Switch Tanh
        TensorListFromTensor TensorListGetItem TensorListReserve TensorListSetItem TensorListStack Transpose
    """.split(),
    "GRU": """
        AddV2 BiasAdd Const Enter Exit Fill Identity Less LogicalAnd LoopCond MatMul Max Merge Mul
        NextIteration NoOp Pack Placeholder Range Shape Sigmoid Split Squeeze StridedSlice Sub Switch Tanh
        TensorListFromTensor TensorListGetItem TensorListReserve TensorListSetItem TensorListStack Transpose
    """.split(),
    "BidirectionalLSTM": """
        AddV2 BiasAdd ConcatV2 Const Enter Exit Fill Identity Less LogicalAnd LoopCond MatMul Max Merge Mul
        NextIteration NoOp Pack Placeholder Range ReverseV2 Shape Sigmoid Split StridedSlice Switch Tanh
        TensorListFromTensor TensorListGetItem TensorListReserve TensorListSetItem TensorListStack Transpose
    """.split(),
    "SimpleRNN": """
        AddV2 BiasAdd Const Enter Exit Fill Identity Less LogicalAnd LoopCond MatMul Max Merge NextIteration
        NoOp Pack Placeholder Range Shape StridedSlice Switch Tanh TensorListFromTensor TensorListGetItem
        TensorListReserve TensorListSetItem TensorListStack Transpose
    """.split(),
    "Conv2DTranspose": """
        AddV2 BiasAdd Cast ConcatV2 Const Conv2DBackpropInput ExpandDims Identity Mul NoOp Pack Placeholder
        Reshape Rsqrt Shape Squeeze StridedSlice Sub Tile
    """.split(),
    "Conv3DTranspose": """
        BiasAdd Const Conv3DBackpropInputV2 Identity NoOp Pack Placeholder Reshape Shape Squeeze StridedSlice
    """.split(),
    "Conv1DTranspose": """
        BiasAdd ConcatV2 Const Conv2D Conv2DBackpropInput DepthwiseConv2dNative ExpandDims Identity NoOp Pack
        Placeholder Reshape Shape Squeeze StridedSlice
    """.split(),
    "SeparableDepthwise": """
        AddV2 BiasAdd Const Conv2D DepthwiseConv2dNative Identity Max Mean Mul Neg NoOp Placeholder Reshape
        Rsqrt SquaredDifference Squeeze StopGradient
    """.split(),
    "Embedding": """
        AddV2 BiasAdd Const GatherV2 Identity Less MatMul Mean NoOp Placeholder SelectV2 Softmax StridedSlice
    """.split(),
    "TimeDistributedDropout": """
        BiasAdd Const Identity MatMul NoOp Pack Placeholder Reshape Shape StridedSlice Transpose
    """.split(),
    "Transformer": """
        AddV2 BatchMatMulV2 BiasAdd ConcatV2 Const Einsum Erfc GatherV2 Identity Less MatMul Mean Mul Neg NoOp
        Pack Placeholder Prod Reshape Rsqrt SelectV2 Shape Softmax SquaredDifference StopGradient StridedSlice
        Transpose
    """.split(),
    "AssortedLayers": """
        AddV2 AvgPool BatchMatMulV2 BatchToSpaceND BiasAdd Cast ConcatV2 Const Conv2D Elu ExpandDims Identity
        IdentityN LeakyRelu MatMul Maximum Mean Mul Neg NoOp Pack Pad Placeholder RealDiv Relu Relu6 Reshape
        ResizeBilinear Rsqrt Shape Sigmoid Softmax Softplus SpaceToBatchND Sqrt SquaredDifference Squeeze
        StopGradient StridedSlice Sub Tile Transpose
    """.split(),
    "NumericPreprocessing": """
        AddV2 Bucketize Cast Const DenseBincount Greater Identity LookupTableFindV2 Max Maximum Minimum Mul
        NoOp Placeholder Size
    """.split(),
    "Segmentation": """
        ArgMax BiasAdd Bitcast BitwiseAnd Const Conv2D Equal Identity Less LogicalAnd NoOp Placeholder Reshape
        ResizeBilinear SelectV2 Softmax Squeeze
    """.split(),
    "Einsum": """
        Const Einsum Identity Placeholder
    """.split(),
    "TextVectorization": """
        Const Equal Identity LookupTableFindV2 NoOp Placeholder RaggedTensorToTensor SelectV2
        StaticRegexReplace StridedSlice StringLower StringSplitV2
    """.split(),
    "StringLookup": """
        Const Identity LookupTableFindV2 NoOp Placeholder
    """.split(),
    "Hashing": """
        Identity Placeholder StringToHashBucketFast
    """.split(),
    "TextStrings": """
        AddV2 AsString Cast ConcatV2 Const Cumsum DenseBincount Greater Identity Max Maximum Minimum Mul
        Placeholder Reshape Size StaticRegexFullMatch StridedSlice StringJoin StringLength StringNGrams
        StringSplitV2 StringStrip StringToHashBucketFast StringToNumber Sub Substr UnicodeDecode
    """.split(),
    "ImagePreprocessing": """
        Assert Cast Const DecodeJpeg ExpandDims Floor GreaterEqual Identity MatMul Maximum Mean Mul NoOp Pack
        Pad Placeholder Prod RealDiv Reshape ResizeBilinear Rsqrt Slice Sqrt Square Squeeze StridedSlice Sub
    """.split(),
    "ImageBatchPreprocessing": """
        AdjustContrastv2 Const CropAndResize Identity Maximum Minimum Placeholder RGBToHSV ResizeBicubic
        ResizeBilinear ResizeNearestNeighbor ReverseV2
    """.split(),
    "JpegBatchMapFn": """
        AddV2 Cast Const DecodeImage Enter Exit ExpandDims Identity Less LogicalAnd LoopCond Merge Mul
        NextIteration NoOp Placeholder ResizeBilinear Shape Squeeze StridedSlice Switch TensorListFromTensor
        TensorListGetItem TensorListReserve TensorListSetItem TensorListStack
    """.split(),
    "DetectionPostprocess": """
        ArgMax Const GatherV2 Identity NonMaxSuppressionV3 Placeholder TopKV2
    """.split(),
    "Sampling": """
        AddV2 Const Exp Identity MatMul Mul Multinomial Placeholder RandomStandardNormal Shape
        StatelessRandomGetKeyCounter StatelessRandomNormalV2 StridedSlice
    """.split(),
    "AudioFeatures": """
        AddV2 BroadcastArgs BroadcastTo Cast Complex ComplexAbs ConcatV2 Const Cos Equal Exp ExpandDims Fill
        FloorDiv FloorMod GatherV2 GreaterEqual Identity Log MatMul Maximum Minimum Mul Neg Pack Pad
        Placeholder Prod RFFT Range Real RealDiv Reshape Rsqrt SelectV2 Shape Slice Split SplitV StridedSlice
        Sub Transpose
    """.split(),
    "QuantizationAware": """
        Const FakeQuantWithMinMaxArgs FakeQuantWithMinMaxVars FakeQuantWithMinMaxVarsPerChannel Identity
        MatMul Placeholder QuantizeAndDequantizeV4
    """.split(),
    "TF1LoopsControlFlowV1": """
        AddV2 ConcatV2 Const Enter Exit Fill GatherV2 Greater Identity Less LoopCond MatMul Merge Mul
        NextIteration Pack Placeholder Prod Range Reshape Shape Softmax StridedSlice Sum Switch Tanh
        TensorArrayGatherV3 TensorArrayReadV3 TensorArrayScatterV3 TensorArrayV3 TensorArrayWriteV3 Transpose
    """.split(),
    "TF1LoopsControlFlowV2": """
        AddV2 ConcatV2 Const Fill GatherV2 Greater Identity Less MatMul Mul Pack Placeholder Prod Reshape
        Shape Softmax StatelessIf StatelessWhile StridedSlice Sum Tanh TensorListFromTensor TensorListGetItem
        TensorListReserve TensorListSetItem TensorListStack Transpose While
    """.split(),
    "TF1CNN": """
        BiasAdd Const Conv2D FusedBatchNormV3 Identity MatMul MaxPool Placeholder Relu Reshape Softmax
    """.split(),
    "TF1TextTable": """
        Cast Const GatherV2 Greater HashTableV2 Identity LookupTableFindV2 Placeholder StringLower StringSplit
        Sum
    """.split(),
    "TF1ExampleParsing": """
        ConcatV2 Const Identity ParseExampleV2 Placeholder SparseReorder SparseSegmentMean SparseToDense
        StridedSlice StringToHashBucketFast
    """.split(),
    "TF1SpeechCommands": """
        AudioSpectrogram Const DecodeWav Identity Mfcc Placeholder Reshape
    """.split(),
}


def registry():
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    return {op.name: op for op in ops.op}


def reaches_out(op) -> str | None:
    """The first input or attribute of an OpDef named like a file, path or address."""
    for name in [arg.name for arg in op.input_arg] + [attr.name for attr in op.attr]:
        if REACHES_OUT.search(name):
            return name
    return None


def candidates() -> dict:
    """Rules 1 and 2: the computing operations, name -> OpDef."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ops = registry()
    chosen = {}
    for module_name in COMPUTING_MODULES + tuple(FROM_MIXED_MODULES):
        module = importlib.import_module(f"tensorflow.python.ops.{module_name}")
        pattern = FROM_MIXED_MODULES.get(module_name)
        for name in _WRAPPED_OP.findall(Path(module.__file__).read_text()):
            if (name in ops and name not in NEVER and (pattern is None or pattern.fullmatch(name))
                    and reaches_out(ops[name]) is None):
                chosen[name] = ops[name]
    return chosen


def dropped_by(name: str, op) -> Family | None:
    return next((family for family in DROPPED if family.holds(name, op)), None)


def derive() -> list[str]:
    return sorted(name for name, op in candidates().items() if dropped_by(name, op) is None and name not in ABORTS)


def render(names: list[str]) -> str:
    import tensorflow as tf

    lines, line = [], "   "
    for name in names:
        item = f' "{name}",'
        if len(line) + len(item) > 118:
            lines.append(line)
            line = "   "
        line += item
    lines.append(line)
    body = "\n".join(lines)
    return (f'"""TensorFlow operations a served graph may use: {len(names)} of TensorFlow {tf.__version__}\'s registry.\n\n'
            "Generated by tools/allowlists.py, which says how they were chosen; do not edit by hand.\n"
            '"""\n\nALLOWED_OPS = frozenset({\n' + body + "\n})\n")


def main() -> int:
    if "--measure" in sys.argv:
        return measure()
    if "--probe" in sys.argv:
        return probe(sys.argv[sys.argv.index("--probe") + 1:])
    if "--probe-server" in sys.argv:
        return probe(sys.argv[sys.argv.index("--probe-server") + 1:], child="--probe-server-child")
    if "--probe-child" in sys.argv:
        return _probe_child(sys.argv[sys.argv.index("--probe-child") + 1:])
    if "--probe-server-child" in sys.argv:
        return _probe_server_child(sys.argv[sys.argv.index("--probe-server-child") + 1:])
    names = derive()
    text = render(names)
    if "--check" in sys.argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is not what tools/allowlists.py derives from this TensorFlow: run it and review the diff")
            return 1
        missing = {f"{op} ({export})" for export, ops in MEASURED.items() for op in ops if op not in names}
        if missing:
            print("operations of real exports (MEASURED) are no longer allowed: " + ", ".join(sorted(missing)))
            return 1
        unguarded = _unguarded()
        if unguarded:
            print("kept operations the probe ended, with no guard in src/redisai/backends/tf.py: " + ", ".join(unguarded))
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


def _unguarded() -> list[str]:
    sys.path.insert(0, str(OUTPUT.parent.parent.parent))
    from redisai.backends import tf as backend

    return sorted(set(GUARDED) - set(backend.GUARDS) - set(backend.ATTRIBUTE_CHECKS))


# ------------------------------------------------------------------------------------------------------
# --measure: real exports, and the operation types each holds
# ------------------------------------------------------------------------------------------------------

def measure() -> int:
    """Builds every export of `_exports()` (random weights, nothing downloaded) and prints MEASURED."""
    measured = {}
    for name, build in _exports().items():
        graph_def = build()
        ops = {node.op for node in graph_def.node}
        for function in graph_def.library.function:
            ops |= {node.op for node in function.node_def}
        measured[name] = sorted(ops)
        print(f"# {name}: {len(ops)} operation types", file=sys.stderr, flush=True)
    print("MEASURED: dict[str, list[str]] = {")
    for name, ops in measured.items():
        print(f"    {name!r}: {ops!r},")
    print("}")
    return 0


def _exports() -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    tf.keras.utils.set_random_seed(0)
    keras, layers = tf.keras, tf.keras.layers

    def frozen(function, *specs):
        return convert_variables_to_constants_v2(tf.function(function).get_concrete_function(*specs)).graph.as_graph_def()

    def application(name, shape=(224, 224, 3)):
        def build():
            model = getattr(keras.applications, name)(weights=None, input_shape=shape)
            return frozen(lambda x: model(x, training=False), tf.TensorSpec([None, *shape], tf.float32))
        return build

    def sequential(*stack, shape, dtype=tf.float32):
        def build():
            model = keras.Sequential([keras.Input(shape[1:], dtype=dtype), *stack])
            return frozen(lambda x: model(x, training=False), tf.TensorSpec(shape, dtype))
        return build

    def functional(build_model, spec):
        def build():
            model = build_model()
            return frozen(lambda x: model(x, training=False), spec)
        return build

    def transformer():
        tokens = keras.Input((16,), dtype="int32")
        x = layers.Embedding(100, 32)(tokens)
        x = layers.LayerNormalization()(x + layers.MultiHeadAttention(4, 8)(x, x))
        x = layers.LayerNormalization()(x + layers.Dense(32)(layers.Dense(64, activation="gelu")(x)))
        return keras.Model(tokens, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(x)))

    def assorted_layers():
        image = keras.Input((32, 32, 3))
        x = layers.Normalization(mean=0.5, variance=0.25)(layers.Rescaling(1 / 255.0)(image))
        x = layers.CenterCrop(20, 20)(layers.Resizing(24, 24)(x))
        x = layers.ELU()(layers.LeakyReLU()(layers.PReLU()(layers.Conv2D(4, 3, dilation_rate=2)(x))))
        x = layers.Cropping2D(1)(layers.ZeroPadding2D(1)(layers.GroupNormalization(2)(x)))
        x = layers.Reshape((-1, 4))(layers.Permute((2, 1, 3))(layers.AveragePooling2D(2)(x)))
        x = layers.Concatenate()([x, layers.Attention()([x, x])])
        for activation in ("softplus", "swish", "hard_sigmoid"):
            x = layers.Activation(activation)(x)
        x = layers.GlobalAveragePooling1D()(layers.RepeatVector(2)(layers.Flatten()(x)))
        return keras.Model(image, layers.Dense(3, activation="softmax")(x))

    def numeric_preprocessing():
        values = keras.Input((4,))
        bins = layers.Discretization(bin_boundaries=[0.0, 1.0])(values)
        counts = layers.CategoryEncoding(num_tokens=3, output_mode="count")(bins)
        return keras.Model(values, [counts, layers.IntegerLookup(vocabulary=[1, 2, 3])(keras.ops.cast(bins, "int64"))])

    def segmentation():
        image = keras.Input((64, 64, 3))
        x = layers.UpSampling2D(interpolation="bilinear")(layers.Conv2D(8, 3, strides=2, padding="same")(image))
        scores = layers.Softmax()(layers.Conv2D(3, 1)(x))
        return keras.Model(image, [scores, keras.ops.argmax(scores, -1)])

    def text_vectorization():
        layer = layers.TextVectorization(max_tokens=100, output_sequence_length=8,
                                         vocabulary=["the", "cat", "sat", "on", "mat"])
        return frozen(layer, tf.TensorSpec([None], tf.string))

    def string_lookup():
        return frozen(layers.StringLookup(vocabulary=["a", "b", "c"]), tf.TensorSpec([None], tf.string))

    def hashing():
        return frozen(layers.Hashing(num_bins=16), tf.TensorSpec([None], tf.string))

    def text_strings():
        def f(s):
            ngrams = tf.strings.ngrams(tf.strings.split(s), 2, separator=" ")
            number = tf.strings.to_number(tf.strings.substr(s, 0, 1), tf.float32)
            return (tf.strings.to_hash_bucket_fast(ngrams.flat_values, 100),
                    tf.strings.unicode_split(s, "UTF-8").row_lengths(), number,
                    tf.strings.regex_full_match(s, "[a-z]+"),
                    tf.strings.length(tf.strings.join(["[CLS]", s], separator=" ")), tf.strings.strip(s),
                    tf.strings.as_string(tf.cast(number, tf.int64)))
        return frozen(f, tf.TensorSpec([None], tf.string))

    def image_preprocessing():
        def f(jpeg):
            image = tf.image.convert_image_dtype(tf.io.decode_jpeg(jpeg, channels=3), tf.float32)
            image = tf.image.central_crop(tf.image.resize(image, [224, 224]), 0.875)
            image = tf.image.per_image_standardization(tf.image.resize_with_pad(image, 224, 224))
            return tf.image.rgb_to_grayscale(image)
        return frozen(f, tf.TensorSpec([], tf.string))

    def image_batch_preprocessing():
        def f(x):
            x = tf.image.resize(tf.image.resize(x, [64, 64]), [32, 32], method="nearest")
            x = tf.image.crop_and_resize(tf.image.resize(x, [48, 48], method="bicubic"), [[0.0, 0.0, 1.0, 1.0]],
                                         [0], [16, 16])
            x = tf.image.adjust_contrast(tf.image.flip_left_right(x), 2.0)
            return tf.image.rgb_to_hsv(tf.clip_by_value(x, 0.0, 1.0))
        return frozen(f, tf.TensorSpec([1, 64, 64, 3], tf.float32))

    def jpeg_batch():
        def f(jpegs):
            def one(jpeg):
                image = tf.io.decode_image(jpeg, channels=3, expand_animations=False)
                return tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), [32, 32])
            return tf.map_fn(one, jpegs, fn_output_signature=tf.float32)
        return frozen(f, tf.TensorSpec([None], tf.string))

    def detection_postprocess():
        def f(boxes, scores):
            keep = tf.image.non_max_suppression(boxes, scores, 10, 0.5)
            return tf.gather(boxes, keep), tf.math.top_k(scores, 5).values, tf.argmax(scores)
        return frozen(f, tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.float32))

    def einsum():
        weights = tf.constant(tf.random.normal([8, 4]))
        return frozen(lambda x: tf.einsum("bij,jk->bik", x, weights), tf.TensorSpec([None, 3, 8], tf.float32))

    def sampling():
        def f(mean, log_var):
            z = mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
            return (tf.random.categorical(tf.matmul(z, tf.ones([2, 5])), 1),
                    tf.random.stateless_normal([2], seed=[1, 2]) + z[0])
        return frozen(f, tf.TensorSpec([None, 2], tf.float32), tf.TensorSpec([None, 2], tf.float32))

    def audio_features():
        def f(wave):
            magnitude = tf.abs(tf.signal.stft(wave, 256, 128))
            mel = tf.tensordot(magnitude, tf.signal.linear_to_mel_weight_matrix(20, 129, 16000), 1)
            return tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))
        return frozen(f, tf.TensorSpec([None, 16000], tf.float32))

    def quantization_aware():
        def f(x):
            weights = tf.quantization.fake_quant_with_min_max_vars_per_channel(tf.ones([4, 3]), [-1.0] * 3, [1.0] * 3)
            y = tf.matmul(tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 1.0), weights)
            y = tf.quantization.quantize_and_dequantize_v2(y, -1.0, 1.0, range_given=True)
            return tf.quantization.fake_quant_with_min_max_args(y, -6.0, 6.0)
        return frozen(f, tf.TensorSpec([None, 4], tf.float32))

    def tf1(build_graph, outputs, v1_control_flow=False):
        def build():
            graph = tf.Graph()
            with graph.as_default():
                if v1_control_flow:
                    tf.compat.v1.disable_control_flow_v2()
                try:
                    build_graph()
                    with tf.compat.v1.Session() as session:
                        session.run(tf.compat.v1.global_variables_initializer())
                        return tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(),
                                                                                      outputs)
                finally:
                    tf.compat.v1.enable_control_flow_v2()
        return build

    def tf1_loops():
        v1 = tf.compat.v1
        x = v1.placeholder(tf.float32, [None, 5, 4], name="x")
        w_in, w_out = v1.get_variable("w_in", [4, 8]), v1.get_variable("w", [8, 3])
        steps = tf.shape(x)[1]
        inputs = tf.TensorArray(tf.float32, size=steps).unstack(tf.transpose(x, [1, 0, 2]))

        def body(t, h, outputs):
            h = tf.tanh(tf.matmul(inputs.read(t), w_in) + h)
            return t + 1, h, outputs.write(t, h)
        _, _, outputs = v1.while_loop(lambda t, h, o: t < steps, body, [tf.constant(0), tf.zeros([tf.shape(x)[0], 8]),
                                                                        tf.TensorArray(tf.float32, size=steps)])
        sequence = tf.transpose(outputs.stack(), [1, 0, 2])
        _, total = v1.while_loop(lambda i, s: i < 10, lambda i, s: (i + 1, s + tf.reduce_sum(x)),
                                 [tf.constant(0), tf.constant(0.0)])
        y = v1.cond(total > 0, lambda: sequence * 2.0, lambda: sequence)
        tf.nn.softmax(tf.tensordot(y, w_out, 1), name="out")

    def tf1_cnn():
        v1 = tf.compat.v1
        x = v1.placeholder(tf.float32, [None, 28, 28, 1], name="x")
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, v1.get_variable("k", [3, 3, 1, 8]), 1, "SAME"),
                                      v1.get_variable("b", [8])))
        y, _, _ = v1.nn.fused_batch_norm(tf.nn.max_pool2d(y, 2, 2, "VALID"), v1.get_variable("scale", [8]),
                                         v1.get_variable("offset", [8]), mean=tf.zeros([8]), variance=tf.ones([8]),
                                         is_training=False)
        y = tf.matmul(tf.reshape(y, [-1, 14 * 14 * 8]), v1.get_variable("d", [14 * 14 * 8, 10]))
        tf.nn.softmax(v1.nn.dropout(y, rate=0.0), name="out")

    def tf1_text_table():
        s = tf.compat.v1.placeholder(tf.string, [None], name="s")
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a", "b"], [1, 2], tf.string, tf.int64), -1)
        ids = table.lookup(tf.compat.v1.string_split(tf.strings.lower(s)).values)
        tf.gather(tf.constant(["neg", "pos"]), tf.cast(tf.reduce_sum(ids) > 1, tf.int32), name="label")
        tf.identity(ids, name="out")

    def tf1_example_parsing():
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="examples")
        features = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([3], tf.float32),
                                                    "ids": tf.io.VarLenFeature(tf.int64),
                                                    "words": tf.io.VarLenFeature(tf.string)})
        pooled = tf.nn.embedding_lookup_sparse(tf.ones([10, 4]), features["ids"], None, combiner="mean")
        tf.identity(tf.concat([features["x"], pooled], 1), name="out")
        tf.identity(tf.strings.to_hash_bucket_fast(tf.sparse.to_dense(features["words"], default_value=""), 10),
                    name="buckets")
        tf.identity(tf.sparse.to_dense(tf.sparse.reorder(features["ids"])), name="dense")

    def tf1_speech_commands():
        wav = tf.compat.v1.placeholder(tf.string, [], name="wav_data")
        audio = tf.audio.decode_wav(wav, desired_channels=1, desired_samples=16000)
        spectrogram = tf.raw_ops.AudioSpectrogram(input=audio.audio, window_size=480, stride=160, magnitude_squared=True)
        mfcc = tf.raw_ops.Mfcc(spectrogram=spectrogram, sample_rate=audio.sample_rate, dct_coefficient_count=40)
        tf.identity(tf.reshape(mfcc, [-1]), name="out")

    rnn_input = dict(shape=[None, 5, 3])
    exports = {name: application(name) for name in (
        "MobileNetV2", "ResNet50", "EfficientNetB0", "EfficientNetV2B0", "DenseNet121", "VGG16", "MobileNetV3Small",
        "ConvNeXtTiny", "NASNetMobile")}
    exports.update({
        "InceptionV3": application("InceptionV3", (299, 299, 3)),
        "Xception": application("Xception", (299, 299, 3)),
        "LSTM": sequential(layers.LSTM(8, return_sequences=True), layers.LSTM(4), **rnn_input),
        "GRU": sequential(layers.GRU(8), **rnn_input),
        "BidirectionalLSTM": sequential(layers.Bidirectional(layers.LSTM(8)), layers.Dense(2), **rnn_input),
        "SimpleRNN": sequential(layers.SimpleRNN(4), **rnn_input),
        "Conv2DTranspose": sequential(layers.Conv2DTranspose(4, 3, strides=2), layers.Conv2DTranspose(2, 3, padding="same"),
                                      layers.UpSampling2D(), layers.BatchNormalization(), shape=[None, 8, 8, 3]),
        "Conv3DTranspose": sequential(layers.Conv3DTranspose(2, 3, strides=2), shape=[None, 4, 4, 4, 1]),
        "Conv1DTranspose": sequential(layers.Conv1D(4, 3), layers.Conv1DTranspose(2, 3, strides=2),
                                      layers.SeparableConv1D(2, 3), shape=[None, 8, 3]),
        "SeparableDepthwise": sequential(layers.SeparableConv2D(4, 3), layers.DepthwiseConv2D(3),
                                         layers.LayerNormalization(), layers.GlobalMaxPooling2D(), shape=[None, 8, 8, 3]),
        "Embedding": sequential(layers.Embedding(100, 8), layers.GlobalAveragePooling1D(),
                                layers.Dense(2, activation="softmax"), shape=[None, 6], dtype=tf.int32),
        "TimeDistributedDropout": sequential(layers.TimeDistributed(layers.Dense(4)), layers.Dropout(0.5),
                                             layers.Flatten(), **rnn_input),
        "Transformer": functional(transformer, tf.TensorSpec([None, 16], tf.int32)),
        "AssortedLayers": functional(assorted_layers, tf.TensorSpec([None, 32, 32, 3], tf.float32)),
        "NumericPreprocessing": functional(numeric_preprocessing, tf.TensorSpec([None, 4], tf.float32)),
        "Segmentation": functional(segmentation, tf.TensorSpec([None, 64, 64, 3], tf.float32)),
        "Einsum": einsum,
        "TextVectorization": text_vectorization,
        "StringLookup": string_lookup,
        "Hashing": hashing,
        "TextStrings": text_strings,
        "ImagePreprocessing": image_preprocessing,
        "ImageBatchPreprocessing": image_batch_preprocessing,
        "JpegBatchMapFn": jpeg_batch,
        "DetectionPostprocess": detection_postprocess,
        "Sampling": sampling,
        "AudioFeatures": audio_features,
        "QuantizationAware": quantization_aware,
        "TF1LoopsControlFlowV1": tf1(tf1_loops, ["out"], v1_control_flow=True),
        "TF1LoopsControlFlowV2": tf1(tf1_loops, ["out"]),
        "TF1CNN": tf1(tf1_cnn, ["out"]),
        "TF1TextTable": tf1(tf1_text_table, ["out", "label"]),
        "TF1ExampleParsing": tf1(tf1_example_parsing, ["out", "buckets", "dense"]),
        "TF1SpeechCommands": tf1(tf1_speech_commands, ["out"]),
    })
    return exports


# ------------------------------------------------------------------------------------------------------
# --probe: which operations end the process on inconsistent inputs
# ------------------------------------------------------------------------------------------------------

PROBE_VARIANTS = 600  # random input sets per operation
PROBE_OP_TIMEOUT_S = 120  # an operation whose variants take longer is recorded as a hang
PROBE_ADDRESS_SPACE = 6 << 30  # a child's address space: a kernel asking for more gets bad_alloc (an abort)
_PROBE_TYPES = ("float32", "int32", "int64", "string", "bool", "uint8", "float64", "float16", "complex64", "int8",
                "bfloat16", "int16", "uint16", "uint32", "uint64", "complex128", "qint8", "quint8", "qint32")


def probe(names: list[str], child: str = "--probe-child") -> int:
    """Runs the child on the operations (all candidates by default, dropped families included: the record
    says which of those abort too), one child at a time, restarting it after each crash or hang.
    --probe-server runs the same inputs through the server's own loader (src/redisai/backends/tf.py: its
    checks and guards, then a session): what it finds ending the process is what a client could."""
    ops = candidates()
    child_flag = child
    pending = [name for name in (names or sorted(ops)) if not _has_function_attr(ops[name])]
    found: dict[str, str] = {}
    started = time.monotonic()
    while pending:
        child = subprocess.Popen([sys.executable, __file__, child_flag, *pending], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, preexec_fn=_probe_limits)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in child.stdout] + [lines.put(None)],
                         daemon=True).start()
        current, detail, since = None, "", time.monotonic()
        while True:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line.startswith("RUN "):
                op, _, detail = line[4:].rstrip("\n").partition(" ")
                if op != current:
                    current, since = op, time.monotonic()
            elif line.startswith("DONE "):
                pending.remove(line[5:].strip())
            if current and time.monotonic() - since > PROBE_OP_TIMEOUT_S:
                os.kill(child.pid, signal.SIGKILL)
                found[current] = f"hang over {PROBE_OP_TIMEOUT_S} s ({detail})"
                pending.remove(current)
                print(f"{current}: {found[current]}", file=sys.stderr, flush=True)
                current = None
                break
        code = child.wait()
        if code != 0 and pending and current is not None:
            if current not in pending:  # the next one failed before its first run: never probed
                current, code = pending[0], 1
            if code < 0:
                found[current] = f"{signal.Signals(-code).name} on {detail}"
                print(f"{current}: {found[current]}", file=sys.stderr, flush=True)
            else:
                print(f"{current}: the child failed (exit {code}): not probed", file=sys.stderr, flush=True)
            pending.remove(current)
    print(f"# probe: {len(found)} of {len(names or ops)} operations ended the process, "
          f"{(time.monotonic() - started) / 60:.0f} min", file=sys.stderr)
    print(json.dumps(found, indent=1, sort_keys=True))
    return 0


def _probe_limits() -> None:
    import resource

    os.nice(19)
    resource.setrlimit(resource.RLIMIT_AS, (PROBE_ADDRESS_SPACE, PROBE_ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _has_function_attr(op) -> bool:
    return any(attr.type in ("func", "list(func)") for attr in op.attr)


def _probe_child(names: list[str]) -> int:
    import random

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.eager import context, execute

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    ops = registry()
    ctx = context.context()
    for name in names:
        op = ops[name]
        generator = random.Random(name)
        for variant in range(PROBE_VARIANTS):
            try:
                inputs, attrs, outputs, text = _variant(op, generator, variant, tf, np)
            except Exception:  # noqa: BLE001 - no such inputs can be made (a resource, a tensor attribute)
                continue
            print(f"RUN {name} {text}", flush=True)
            try:
                execute.execute(name.encode(), outputs, inputs, tuple(attrs), ctx)
            except Exception:  # noqa: BLE001 - an error is the answer we want; only a dead process counts
                pass
        print(f"DONE {name}", flush=True)
    return 0


def _near(base: list[int], generator) -> list[int]:
    """The shape shared by the inputs, or one a little off it: the mismatches kernels miss are those."""
    shape, roll = list(base), generator.random()
    if roll < 0.45:
        return shape
    if roll < 0.6 and shape:
        del shape[generator.randrange(len(shape))]
    elif roll < 0.7:
        shape.insert(generator.randrange(len(shape) + 1), generator.choice([1, 2]))
    elif roll < 0.85 and shape:
        shape[generator.randrange(len(shape))] = generator.choice([0, 1, 2, 3])
    else:
        shape = [generator.choice([0, 1, 2, 3]) for _ in range(generator.choice([0, 1, 2, 3, 4, 5]))]
    return shape


def _probe_server_child(names: list[str]) -> int:
    """Each variant as a GraphDef (placeholders of unknown shape fed the variant's values; a TensorList
    made in the graph from a fed tensor), loaded by the server's TF backend and run."""
    import random

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.path.insert(0, str(OUTPUT.parent.parent.parent))
    from redisai.backends import memory

    memory.budget.limit_bytes = 1 << 30
    import numpy as np
    import tensorflow as tf

    from redisai.backends import tf as backend
    from redisai.backends.base import BackendError, Device, Options

    ops = registry()
    for name in names:
        op = ops[name]
        generator = random.Random(name)
        if not op.output_arg:
            print(f"DONE {name}", flush=True)
            continue
        for variant in range(PROBE_VARIANTS):
            try:
                inputs, attrs, _, text = _variant(op, generator, variant, tf, np)
                graph_def, feeds = _variant_graph(op, inputs, attrs, tf)
            except Exception:  # noqa: BLE001 - no such inputs can be made
                continue
            print(f"RUN {name} {text}", flush=True)
            try:
                model = backend.BACKEND.load(graph_def.SerializeToString(), Device("CPU", None),
                                             [f"input{i}" for i in range(len(feeds))], ["probe"],
                                             Options(1, 1, 10_000))
                model.run(feeds)
            except (BackendError, Exception):  # noqa: BLE001 - refused or answered: only a dead process counts
                pass
        print(f"DONE {name}", flush=True)
    return 0


def _variant_graph(op, inputs, flat_attrs, tf):
    graph_def = tf.compat.v1.GraphDef()
    feeds, references = [], []
    for index, tensor in enumerate(inputs):
        placeholder = graph_def.node.add(name=f"input{index}", op="Placeholder")
        if tensor.dtype == tf.variant:
            placeholder.attr["dtype"].type = tf.float32.as_datatype_enum
            feeds.append(tf.ones([2]).numpy())
            shape = graph_def.node.add(name=f"element_shape{index}", op="Const")
            shape.attr["dtype"].type = tf.int32.as_datatype_enum
            shape.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(-1, tf.int32))
            made = graph_def.node.add(name=f"list{index}", op="TensorListFromTensor",
                                      input=[f"input{index}", f"element_shape{index}"])
            made.attr["element_dtype"].type = tf.float32.as_datatype_enum
            made.attr["shape_type"].type = tf.int32.as_datatype_enum
            references.append(f"list{index}")
        else:
            placeholder.attr["dtype"].type = tensor.dtype.as_datatype_enum
            feeds.append(tensor.numpy())
            references.append(f"input{index}")
    node = graph_def.node.add(name="probe", op=op.name, input=references)
    kinds = {attr.name: attr.type for attr in op.attr}
    for key, value in zip(flat_attrs[::2], flat_attrs[1::2]):
        _set_attr(node.attr[key], kinds[key], value, tf)
    return graph_def, feeds


def _set_attr(target, kind: str, value, tf) -> None:
    if kind == "type":
        target.type = value
    elif kind == "list(type)":
        target.list.type.extend(value)
    elif kind == "int":
        target.i = value
    elif kind == "float":
        target.f = value
    elif kind == "bool":
        target.b = value
    elif kind == "string":
        target.s = value.encode()
    elif kind == "shape":
        target.shape.CopyFrom(tf.TensorShape(value).as_proto())
    elif kind == "list(int)":
        target.list.i.extend(value)
    elif kind == "list(float)":
        target.list.f.extend(value)
    elif kind == "list(string)":
        target.list.s.extend(v.encode() for v in value)
    elif kind == "list(shape)":
        target.list.shape.extend(tf.TensorShape(v).as_proto() for v in value)
    else:
        raise _Skip(kind)


class _Skip(Exception):
    pass


def _variant(op, generator, variant: int, tf, np):
    """Inputs and attributes for one run of `op`: shapes and values small, chosen to disagree."""
    attrs: dict = {}
    for attr in op.attr:
        attrs[attr.name] = _attr_value(attr, generator, tf)
    base = [generator.choice([1, 2, 3]) for _ in range(generator.choice([0, 1, 2, 3, 4, 4, 4]))]
    inputs, described = [], []
    for arg in op.input_arg:
        if arg.number_attr:
            count = attrs[arg.number_attr]
        elif arg.type_list_attr:
            count = len(attrs[arg.type_list_attr])
        else:
            count = 1
        for index in range(count):
            if arg.type_list_attr:
                dtype = attrs[arg.type_list_attr][index]
            elif arg.type_attr:
                dtype = attrs[arg.type_attr]
            else:
                dtype = tf.dtypes.as_dtype(arg.type)
            tensor = _tensor(dtype, base, generator, variant, tf, np)
            inputs.append(tensor)
            described.append(f"{dtype.name}{list(tensor.shape)}")
    outputs = 0
    for arg in op.output_arg:
        outputs += attrs[arg.number_attr] if arg.number_attr else len(attrs[arg.type_list_attr]) \
            if arg.type_list_attr else 1
    flat = []
    for key, value in attrs.items():
        flat += [key, value.as_datatype_enum if isinstance(value, tf.DType) else
                 [v.as_datatype_enum for v in value] if isinstance(value, list) and value and
                 isinstance(value[0], tf.DType) else value]
    shown = {k: (v.name if isinstance(v, tf.DType) else v) for k, v in attrs.items() if not isinstance(v, list)
             or not v or not isinstance(v[0], tf.DType)}
    return inputs, flat, outputs, f"inputs {' '.join(described)} attrs {shown}"


def _attr_value(attr, generator, tf):
    kind = attr.type
    has_default = attr.HasField("default_value")
    if kind in ("type", "list(type)"):
        allowed = [tf.dtypes.as_dtype(t) for t in attr.allowed_values.list.type] or \
            [tf.dtypes.as_dtype(t) for t in _PROBE_TYPES]
        common = [t for t in allowed if t.name in _PROBE_TYPES[:6]] or allowed
        pick = lambda: generator.choice(common if generator.random() < 0.7 else allowed)  # noqa: E731
        if kind == "type":
            return pick()
        return [pick() for _ in range(max(attr.minimum if attr.has_minimum else 0, generator.choice([1, 1, 2])))]
    if has_default and generator.random() < 0.4:
        value = attr.default_value
        field = value.WhichOneof("value")
        if field in ("i", "f", "b", "s"):
            return getattr(value, field).decode() if field == "s" else getattr(value, field)
    if kind == "int":
        low = attr.minimum if attr.has_minimum else -1
        return generator.choice([low, low, low + 1, low + 2, 3, -1])
    if kind == "float":
        return generator.choice([0.0, 0.5, 1.0, -1.0, 1e10])
    if kind == "bool":
        return generator.random() < 0.5
    if kind == "string":
        allowed = [s.decode() for s in attr.allowed_values.list.s]
        return generator.choice(allowed) if allowed else generator.choice(
            ["", "NHWC", "NCHW", "SAME", "VALID", "EXPLICIT", "a"])
    if kind == "shape":
        return [generator.choice([-1, 1, 2]) for _ in range(generator.choice([0, 1, 2]))] \
            if generator.random() < 0.8 else None
    if kind == "list(int)":
        return [generator.choice([-1, 0, 1, 2, 3]) for _ in range(generator.choice([0, 1, 2, 4, 5]))]
    if kind == "list(float)":
        return [generator.choice([0.0, 0.5, 1.0]) for _ in range(generator.choice([0, 1, 2]))]
    if kind == "list(string)":
        return [generator.choice(["a", "", "b"]) for _ in range(generator.choice([0, 1, 2]))]
    if kind == "list(shape)":
        return [[generator.choice([1, 2])] for _ in range(generator.choice([0, 1, 2]))]
    raise _Skip(kind)  # tensor, func


def _tensor(dtype, base, generator, variant, tf, np):
    if dtype in (tf.resource,):
        raise _Skip("resource")
    if dtype == tf.variant:
        element = tf.constant(np.ones(base or [1], np.float32))
        return tf.raw_ops.TensorListFromTensor(tensor=element, element_shape=tf.constant(-1))
    shape = _near(base, generator) if variant >= 4 else list(base)
    count = int(np.prod(shape)) if shape else 1
    if dtype == tf.string:
        values = np.array([generator.choice([b"", b"a", b"\xff\xfe", b"hello world", b"12"]) for _ in range(count)],
                          dtype=object)
    elif dtype == tf.bool:
        values = np.array([generator.random() < 0.5 for _ in range(count)])
    elif dtype.is_integer or dtype.is_quantized:
        values = np.array([generator.choice([-2, -1, 0, 1, 2, 3]) for _ in range(count)])
        if dtype.is_unsigned or dtype in (tf.quint8, tf.quint16):
            values = np.abs(values)
    else:
        values = np.array([generator.choice([0.0, 1.0, -1.5, 2.0, np.nan, np.inf]) for _ in range(count)])
    values = values.reshape(shape)
    return tf.constant(values, dtype=dtype)


if __name__ == "__main__":
    sys.exit(main())
