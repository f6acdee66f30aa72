"""Learner-side helpers for the attention checks.

Each `name(module, *args)` runs next to the learner's module (in the grading worker when
grading) and returns plain data: numbers, tensors, and lists/dicts of them. The checks call
them as `helpers.name(*args)`. Nothing here decides pass or fail; the checks do.

This file runs in the same process as learner code, which can replace any function here. So
whatever a helper returns is learner-controlled data: a check may compare it with an answer
it computed itself (the tokens greedy_decode produced, trained weights it then runs in the
grader), or use it to explain a failure (call records, learning rates), never take it as a
verdict (an accuracy, a flag saying "all good").
"""
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

# --- rate ----------------------------------------------------------------------------------


def call_rate(module, step, model_size, factor, warmup):
    """`{"value": rate(...)}`, or `{"error": "ZeroDivisionError: ..."}` when rate raises.

    NotImplementedError passes through, so an untouched stub still reads "not started".
    """
    try:
        value = module.rate(step, model_size, factor, warmup)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported to the check as data
        return {"error": f"{type(exc).__name__}: {exc}"}
    if isinstance(value, torch.Tensor):
        value = value.detach()
    return {"value": value}


# --- greedy_decode ---------------------------------------------------------------------------


class _LogSoftmax(nn.Module):
    def forward(self, x):
        return x.log_softmax(dim=-1)


class ScriptedCopyModel(nn.Module):
    """A stand-in for an EncoderDecoder whose next-token prediction is known in advance.

    encode(src) returns one-hot rows of the source (scaled, so the argmax is sharp);
    decode(...) returns, at target position t, the source row r = t + 1 (the last one past the
    end). So a correct greedy decoder copies the source. With `shift` (a list of `vocab` ints)
    it predicts 1 + (r + shift[tgt[t]]) % (vocab - 1) instead, which depends on the token fed
    at position t too. With `strict`, a call out of protocol (encode called more than once,
    a memory that is not encode's, a target that is not all the tokens so far, a tgt_mask that
    is not subsequent_mask) predicts token 0 at every position: the decoded tokens, which the
    checks compute for themselves, then come out wrong. Every call is recorded.
    """

    def __init__(self, vocab, shift=None, strict=False):
        super().__init__()
        self.vocab = vocab
        self.shift = None if shift is None else torch.as_tensor(shift, dtype=torch.long)
        self.strict = strict
        self.generator = _LogSoftmax()
        self.encode_calls = 0
        self.decode_calls = []
        self._memory = None

    def encode(self, src, src_mask):
        self.encode_calls += 1
        self._memory = nn.functional.one_hot(src.long(), self.vocab).float() * 20.0  # (B, S, V)
        return self._memory

    def decode(self, memory, src_mask, tgt, tgt_mask):
        call = {
            "tgt": tgt.detach().clone(),
            "tgt_mask": None if tgt_mask is None else torch.as_tensor(tgt_mask).detach().clone(),
            "memory_from_encode": self._memory is not None and memory.shape == self._memory.shape
            and bool(torch.equal(memory, self._memory)),
        }
        self.decode_calls.append(call)
        positions = (torch.arange(tgt.size(1)) + 1).clamp(max=memory.size(1) - 1)
        out = memory[:, positions]  # (B, T, V)
        if self.shift is not None:
            rows = out.argmax(dim=-1)  # (B, T): the source token r at t + 1
            fed = tgt.long().clamp(0, self.vocab - 1)
            out = nn.functional.one_hot(1 + (rows + self.shift[fed]) % (self.vocab - 1), self.vocab).float() * 20.0
        if self.strict and not self._in_protocol(call, len(self.decode_calls)):
            out = torch.zeros_like(out)  # every token equally likely: the argmax is token 0
        return out

    def _in_protocol(self, call, k):
        mask = call["tgt_mask"]
        want = nn.Transformer.generate_square_subsequent_mask(k) == 0  # torch's causal mask: 0 where allowed
        return (self.encode_calls == 1 and call["memory_from_encode"] and tuple(call["tgt"].shape) == (1, k)
                and mask is not None and mask.dim() >= 2 and tuple(mask.shape[-2:]) == (k, k)
                and bool(torch.equal((mask != 0).reshape(-1, k, k)[0], want)))

    def forward(self, src, tgt, src_mask, tgt_mask):
        return self.decode(self.encode(src, src_mask), src_mask, tgt, tgt_mask)


def greedy_decode_scripted(module, src, max_len, start_symbol, vocab, shift=None, strict=False):
    """Run the learner's greedy_decode on a ScriptedCopyModel; return what it produced and
    how it called the model (the checks compute the right tokens themselves)."""
    model = ScriptedCopyModel(vocab, shift, strict)
    src = torch.as_tensor(src, dtype=torch.long)
    src_mask = torch.ones(1, 1, src.size(1), dtype=torch.bool)
    ys = module.greedy_decode(model, src, src_mask, max_len, start_symbol)
    if isinstance(ys, torch.Tensor):
        ys = ys.detach()
    return {"ys": ys, "encode_calls": model.encode_calls, "decode_calls": model.decode_calls}


# --- copy task -----------------------------------------------------------------------------

_TRAINED = {}  # (id(module), steps, seed) -> (module, model, learning rates)


def _train(module, steps, seed):
    """Train once per module, steps and seed; record the learning rate of every optimizer step."""
    key = (id(module), steps, seed)
    hit = _TRAINED.get(key)
    if hit is not None and hit[0] is module:
        return hit[1], hit[2]
    lrs = []

    def record(optimizer, args, kwargs):
        lrs.append(float(optimizer.param_groups[0]["lr"]))

    handle = register_optimizer_step_pre_hook(record)
    try:
        model = module.train_copy_model(steps=steps, seed=seed)  # one torch thread: the worker's setting
    finally:
        handle.remove()
    _TRAINED[key] = (module, model, lrs)
    return model, lrs


def copy_model_state(module, steps, seed):
    """The weights of the model train_copy_model(steps, seed) returned, as data: the checks
    load them into a model of their own and measure it there.

    {"type": the returned object's type name, "state": its state_dict() (None if it has none)}.
    """
    model, _ = _train(module, steps, seed)
    state = model.state_dict() if isinstance(model, nn.Module) else None
    if state is not None:
        state = {name: t.detach().clone() if isinstance(t, torch.Tensor) else t for name, t in state.items()}
    return {"type": type(model).__name__, "state": state}


def copy_task_report(module, steps, seed):
    """What the training did, for explaining a failure only (the checks measure the trained
    weights themselves, copy_model_state): the learning rate at every optimizer step, what the
    learner's own `rate` gives for those steps, and the dropout probabilities in the model.
    """
    model, lrs = _train(module, steps, seed)
    cfg = dict(module.COPY_TASK)
    rates = [float(module.rate(k, cfg["d_model"], cfg["factor"], cfg["warmup"])) for k in range(len(lrs))]
    dropouts = sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0})
    return {"lrs": lrs, "rates": rates, "dropout": dropouts, "steps": steps, "config": cfg}
