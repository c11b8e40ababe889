"""The tensor arena TensorFlow Lite Micro allocates an int8 .tflite in, computed from the flatbuffer alone (no
interpreter): the head, where its GreedyMemoryPlanner lays out the activations and kernel scratch buffers, and
the persistent tail (tensor and node structures, op data, per-channel quantization) as the 64-bit host build of
the `tflite-micro` package sizes it. How it is modelled and how close it comes: docs/deploy.md."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence

ALIGNMENT = 16  # MicroArenaBufferAlignment(): planned buffers and kernel buffers are rounded to it

# Bytes per element of the tensor types a TFLM model holds (schema TensorType values).
TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: 4, 15: 4, 16: 2, 17: 1}

# Sizes of TFLM's structs on a 64-bit host, as built into the tflite-micro wheel (USE_TFLM_COMPRESSION on).
EVAL_TENSOR = 24  # TfLiteEvalTensor
NODE_AND_REGISTRATION = 64
SUBGRAPH_ALLOCATIONS = 24
SCRATCH_HANDLE = 8
PERSISTENT_TENSOR = 64  # the TfLiteTensor of each model input and output
AFFINE_QUANTIZATION = 24  # and its zero-point TfLiteIntArray: 4 + 4 per channel
# The allocator objects themselves (recording arena allocator, greedy planner, recording micro allocator,
# builtin-data allocator), allocated before anything of the model: measured once on the host build.
FIXED_TAIL = 464


@dataclasses.dataclass(frozen=True)
class OpCost:
    """What one op of a kind costs TFLM's reference kernels: the builtin options struct its parser allocates
    (bytes, alignment), the op data its Init allocates, whether its Prepare allocates a per-channel
    multiplier and shift (of the filter's channels along `channel_axis`; "scales": only when per-channel
    quantized), and the scratch buffers it requests ("mean": MEAN/SUM's three, "minmax": two)."""
    options: tuple[int, int] | None = None
    op_data: int = 0
    channel_axis: int | str | None = None
    scratch: str | None = None


UNKNOWN_OP = OpCost(options=(16, 4), op_data=64)  # an op not listed: a typical options struct and op data
# Measured against the tflite-micro wheel's own report (benchmarks/ram_estimate.py), options as it allocates them
# (FULLY_CONNECTED's: 32 bytes there, 16 in the source's header); SUM, REDUCE_MIN, SQUEEZE and EXPAND_DIMS are
# read from TFLM's source (MEAN's and REDUCE_MAX's kernels; no op data). One subgraph: no control flow.
OP_COSTS = {
    "CONV_2D": OpCost((28, 4), 80, 0),
    "DEPTHWISE_CONV_2D": OpCost((28, 4), 80, 3),
    "FULLY_CONNECTED": OpCost((32, 8), 72, "scales"),
    "SOFTMAX": OpCost((4, 4), 80),
    "MEAN": OpCost((1, 1), 44, scratch="mean"),
    "SUM": OpCost((1, 1), 44, scratch="mean"),
    "REDUCE_MAX": OpCost((1, 1), 44, scratch="minmax"),
    "REDUCE_MIN": OpCost((1, 1), 44, scratch="minmax"),
    "RESHAPE": OpCost((36, 4)),
    "SQUEEZE": OpCost((36, 4)),
    "TRANSPOSE": OpCost(),
    "EXPAND_DIMS": OpCost(),
    "ADD": OpCost((8, 4), 60),
    "SUB": OpCost((8, 4), 52),
    "MUL": OpCost((4, 4), 36),
    "AVERAGE_POOL_2D": OpCost((40, 4), 32),
    "MAX_POOL_2D": OpCost((40, 4), 32),
    "LOGISTIC": OpCost(None, 16),
    "PAD": OpCost(None, 56),
    "CONCATENATION": OpCost((8, 4), 80),
    "STRIDED_SLICE": OpCost((24, 4), 84),
    "RELU": OpCost(None, 28),
    "RELU6": OpCost(None, 8),
}


@dataclasses.dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    bytes: int
    constant: bool  # its data is in the flatbuffer (flash): never planned
    variable: bool
    channels: int  # quantization scales (0: not quantized)


@dataclasses.dataclass(frozen=True)
class Op:
    kind: str
    inputs: tuple[int, ...]  # -1: an omitted optional input
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraphs: int = 1


@dataclasses.dataclass(frozen=True)
class Span:
    """A buffer the planner places: its bytes (aligned) and the first and last op scope it is alive in."""
    size: int
    first: int
    last: int


def arena_bytes(blob: bytes) -> int:
    """The arena TFLM allocates the model in: planned activations plus the persistent tail."""
    parts = breakdown(blob)
    return parts["activations"] + parts["persistent"]


def breakdown(blob: bytes) -> dict[str, int]:
    """{"activations": the head (tensors and scratch buffers, as planned), "persistent": the tail, "scratch":
    the scratch buffers' bytes before the planner shares memory}."""
    graph = read_graph(blob)
    spans, scratch = lifetimes(graph)
    return {"activations": planned_bytes(spans), "persistent": tail_bytes(tail_allocations(graph)),
            "scratch": sum(span.size for span in scratch)}


# --- reading the flatbuffer --------------------------------------------------------------------------------

def read_graph(blob: bytes) -> Graph:
    """The main subgraph of a .tflite, as much as the arena depends on."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(blob, 0)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    kinds = [names.get(_builtin_code(model.OperatorCodes(index)), "CUSTOM")
             for index in range(model.OperatorCodesLength())]
    subgraph = model.Subgraphs(0)
    tensors = tuple(_tensor(subgraph.Tensors(index), model) for index in range(subgraph.TensorsLength()))
    ops = tuple(_op(subgraph.Operators(index), kinds) for index in range(subgraph.OperatorsLength()))
    return Graph(tensors, ops, _ints(subgraph.InputsAsNumpy()), _ints(subgraph.OutputsAsNumpy()),
                 model.SubgraphsLength())


def _builtin_code(code) -> int:
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # small codes live in the deprecated field


def _ints(values) -> tuple[int, ...]:
    return tuple(int(value) for value in values) if not isinstance(values, int) else ()  # flatbuffers: 0 if absent


def _tensor(tensor, model) -> Tensor:
    shape = _ints(tensor.ShapeAsNumpy())
    quantization = tensor.Quantization()
    channels = 0
    if quantization is not None and quantization.ScaleLength() and quantization.ZeroPointLength():
        channels = quantization.ScaleLength()
    constant = model.Buffers(tensor.Buffer()).DataLength() > 0
    size = _elements(shape) * TYPE_BYTES.get(tensor.Type(), 4)
    return Tensor(shape, size, constant, bool(tensor.IsVariable()), channels)


def _op(op, kinds: Sequence[str]) -> Op:
    return Op(kinds[op.OpcodeIndex()], _ints(op.InputsAsNumpy()), _ints(op.OutputsAsNumpy()))


# --- the head: lifetimes and the greedy planner ------------------------------------------------------------

def aligned(size: int, alignment: int = ALIGNMENT) -> int:
    return -(-size // alignment) * alignment


def lifetimes(graph: Graph) -> tuple[list[Span], list[Span]]:
    """(every buffer the planner places, in TFLM's order: the non-constant tensors by index, then the scratch
    buffers by request; those scratch buffers alone). Scopes as AllocationInfoBuilder counts them: the
    subgraph inputs are created at 0, op i runs in scope i + 1, the outputs live to the last op."""
    first, last = [-1] * len(graph.tensors), [-1] * len(graph.tensors)
    for index in graph.inputs:
        first[index], last[index] = 0, 0
    scratch = []
    for scope, op in enumerate(graph.ops, start=1):
        _mark_op(op, scope, first, last)
        scratch += [Span(aligned(size), scope, scope) for size in scratch_requests(op, graph)]
    for index in graph.outputs:
        first[index] = len(graph.ops) if first[index] == -1 else first[index]
        last[index] = len(graph.ops)
    tensors = [Span(aligned(tensor.bytes), first[index], last[index]) for index, tensor in enumerate(graph.tensors)
               if not tensor.constant and not tensor.variable and tensor.bytes]
    return tensors + scratch, scratch


def _mark_op(op: Op, scope: int, first: list[int], last: list[int]) -> None:
    for index in op.outputs:
        first[index] = scope if first[index] == -1 else first[index]
    for index in op.inputs + op.outputs:
        if index >= 0:
            last[index] = scope


def scratch_requests(op: Op, graph: Graph) -> list[int]:
    """Bytes of each scratch buffer the op's reference kernel requests in Prepare (int8 reductions only, in
    our ops: the accumulator, the input iterator and the resolved axes)."""
    kind = OP_COSTS.get(op.kind, UNKNOWN_OP).scratch
    if kind is None:
        return []
    rank = len(graph.tensors[op.inputs[0]].shape)
    axes = max(1, _elements(graph.tensors[op.inputs[1]].shape))
    if kind == "minmax":
        return [4 * rank, 4 * axes]
    output = _elements(graph.tensors[op.outputs[0]].shape)
    return [4 * output, 4 * rank, 4 * axes]


def _elements(shape: Sequence[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def greedy_offsets(spans: Sequence[Span]) -> list[int]:
    """Each buffer's offset as TFLM's GreedyMemoryPlanner places it: largest first (of equal sizes the one added
    last, as its stable sort of a reversed list leaves them), each at the lowest offset where it overlaps no
    buffer alive in the same scopes."""
    offsets = [0] * len(spans)
    by_offset: list[tuple[int, int, int]] = []  # (offset, placed order, index): equal offsets keep placing order
    for order, index in enumerate(sorted(range(len(spans)), key=lambda i: (-spans[i].size, -i))):
        offsets[index] = _lowest_gap(spans, by_offset, spans[index])
        bisect.insort(by_offset, (offsets[index], order, index))
    return offsets


def _lowest_gap(spans: Sequence[Span], by_offset, wanted: Span) -> int:
    candidate = 0
    for offset, _, index in by_offset:
        other = spans[index]
        if other.first > wanted.last or wanted.first > other.last:
            continue  # never alive together: may share memory
        if offset - candidate >= wanted.size:
            break
        candidate = max(candidate, offset + other.size)
    return candidate


def planned_bytes(spans: Sequence[Span]) -> int:
    """The head: the end of the highest buffer the greedy plan places."""
    return max((offset + span.size for offset, span in zip(greedy_offsets(spans), spans)), default=0)


# --- the tail: persistent allocations, in the order TFLM makes them ---------------------------------------

def tail_allocations(graph: Graph) -> list[tuple[int, int]]:
    """(bytes, alignment) of each persistent allocation after the fixed objects, in TFLM's order: subgraph
    table, eval tensors, nodes, each op's options, each op's op data (Init), per-channel arrays (Prepare),
    scratch handles, then the model's input and output TfLiteTensors."""
    costs = [OP_COSTS.get(op.kind, UNKNOWN_OP) for op in graph.ops]
    allocations = [(SUBGRAPH_ALLOCATIONS * graph.subgraphs, 8), (EVAL_TENSOR * len(graph.tensors), 8),
                   (NODE_AND_REGISTRATION * len(graph.ops), 8)]
    allocations += [cost.options for cost in costs if cost.options]
    allocations += [(cost.op_data, ALIGNMENT) for cost in costs if cost.op_data]
    for op, cost in zip(graph.ops, costs):
        channels = _per_channel(op, cost, graph)
        allocations += [(4 * channels, ALIGNMENT)] * 2 if channels else []
    scratch = sum(len(scratch_requests(op, graph)) for op in graph.ops)
    allocations += [(SCRATCH_HANDLE * scratch, 8)] if scratch else []
    for indices in (graph.inputs, graph.outputs):
        allocations += [(8 * len(indices), ALIGNMENT)]
        for index in indices:
            allocations += _persistent_tensor(graph.tensors[index])
    return allocations


def _per_channel(op: Op, cost: OpCost, graph: Graph) -> int:
    """Channels of the per-channel multiplier and shift the op's Prepare allocates (0: none)."""
    if cost.channel_axis is None or len(op.inputs) < 2:
        return 0
    weights = graph.tensors[op.inputs[1]]
    if cost.channel_axis == "scales":
        return weights.channels if weights.channels > 1 else 0
    return weights.shape[cost.channel_axis]


def _persistent_tensor(tensor: Tensor) -> list[tuple[int, int]]:
    quantization = [(AFFINE_QUANTIZATION, 8), (4 + 4 * tensor.channels, 4)] if tensor.channels else []
    return [(PERSISTENT_TENSOR, 8)] + quantization


def tail_bytes(allocations: Sequence[tuple[int, int]], fixed: int = FIXED_TAIL) -> int:
    """Bytes from the arena's (16-aligned) end down to the last persistent allocation: each allocation goes
    below the previous one, its start aligned down, so alignment padding counts."""
    used = fixed
    for size, alignment in allocations:
        used = aligned(used + size, alignment)
    return used
