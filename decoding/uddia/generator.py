"""UDDIAGenerator: drop-in `generate()` with UDDIA inference-time adaptation (Yang et al., ICLR 2023).

"Unified Detoxifying and Debiasing in Language Generation via Inference-time Adaptive Optimization": at each
token, one Adam step (lr 0.06) on the bias terms of the upper T layers makes an attribute head judge the
continuation non-toxic and the next-token distribution group-neutral; the adapted distribution is fused with
the unadapted one, P ∝ P_θ^0.9 · P_base^0.1, sampled, and the parameters are restored. A continuation whose
perplexity under the unadapted model exceeds TH = 30 is regenerated with ΔT = 3 fewer tuned layers.
See `step.py` for the per-token equations and docs/uddia.md for the deviations from the official code.

    gen = UDDIAGenerator(model, tokenizer, UDDIAConfig(trigger_threshold=0.5), attribute_head=head)
    out = gen.generate(**tokenizer(prompts, return_tensors="pt", padding=True), max_new_tokens=20,
                       do_sample=True, top_p=0.9)          # same types as model.generate
    gen(["Some prompt"], max_new_tokens=20)                # pipeline("text-generation")-like
    with UDDIAGenerator(model, tokenizer, config, head) as gen: ...

Guarantees (tested): the model's parameters are never written (state dict bit-identical after any call,
including redos and exceptions); with lr = 0 or a trigger that never fires the output equals `model.generate`
with the same seed; each sequence in a batch is adapted on its own.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from fairalign.decoding.uddia.cache import check_forkable, detach_in_place
from fairalign.decoding.uddia.config import UDDIAConfig
from fairalign.decoding.uddia.offset import OffsetAdapter
from fairalign.decoding.uddia.replay import LowerLayerReplay
from fairalign.decoding.uddia.sampling import Settings, build_processors, fuse, resolve_settings, select_tokens
from fairalign.decoding.uddia.step import Adaptation, DecodeState, MainGraph, ModelRunner

try:
    from transformers.generation.utils import GenerateDecoderOnlyOutput
except ImportError:  # pragma: no cover - very old transformers
    from transformers.generation import GenerateDecoderOnlyOutput


@dataclass
class UDDIAGenerateOutput(GenerateDecoderOnlyOutput):
    """GenerateDecoderOnlyOutput plus UDDIA's per-sequence statistics (each (B,))."""

    adapted_steps: torch.Tensor | None = None  # tokens at which the sequence was adapted
    generated_tokens: torch.Tensor | None = None  # tokens generated (up to and including EOS)
    perplexity: torch.Tensor | None = None  # of the continuation under the unadapted model
    tuned_layers: torch.Tensor | None = None  # T of the returned attempt
    attempts: torch.Tensor | None = None  # generations run (1 + redos)


@dataclass
class _Attempt:
    tokens: torch.Tensor  # (b, n) generated ids, pad after EOS
    lengths: torch.Tensor  # (b,) generated tokens up to and including EOS
    nll: torch.Tensor  # (b,) Σ -log P_base(token) over those tokens
    adapted: torch.Tensor  # (b,) adapted steps
    scores: list  # per step (b, V) processed scores, when requested
    logits: list  # per step (b, V) raw unadapted logits, when requested

    @property
    def perplexity(self) -> torch.Tensor:
        return torch.exp(self.nll / self.lengths.clamp_min(1))


@dataclass
class BestAttempt:
    """One row's best attempt so far (lowest perplexity), as returned in `UDDIAGenerateOutput`."""

    perplexity: float  # of the continuation under the unadapted model
    tokens: torch.Tensor  # (n,) generated ids up to and including EOS
    tuned_layers: int  # T of the attempt
    adapted_steps: int
    generated_tokens: int


class UDDIAGenerator:
    """Wraps a causal LM (and its tokenizer) with UDDIA decoding. Attributes: `.model`, `.tokenizer`, `.config`,
    `.attribute_head`, `.last_output` (statistics of the latest call)."""

    def __init__(self, model, tokenizer=None, config: UDDIAConfig | None = None, attribute_head=None, debias=None):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or UDDIAConfig()
        self.attribute_head = attribute_head
        self.adapter = OffsetAdapter(model, self.config.tuned_params)
        self.runner = ModelRunner(model, self.adapter.final_norm[0] if self.adapter.final_norm else None)
        self.replay = LowerLayerReplay(self.adapter.layers)
        self.debias = debias if debias is not None else self._build_debias()
        if attribute_head is None and self.debias is None:
            raise ValueError("UDDIAGenerator needs an attribute_head (detox term), debiasing (debias_weight > 0 and a "
                             "tokenizer), or both")
        if attribute_head is not None:
            self._check_head(attribute_head)
        self.last_output: UDDIAGenerateOutput | None = None
        self._entered: contextlib.ExitStack | None = None

    # ------------------------------------------------------------------ setup
    def _build_debias(self):
        if self.config.debias_weight == 0:
            return None
        if self.tokenizer is None:
            raise ValueError("debiasing needs the tokenizer (word lists -> token ids): pass tokenizer=..., or set "
                             "UDDIAConfig.debias_weight=0")
        from fairalign.decoding.uddia.debias import DebiasTerm
        from fairalign.decoding.uddia.wordlists import load_groups

        c = self.config
        return DebiasTerm(self.runner.embeddings, self.tokenizer, load_groups(c.debias_groups), c.debias_temperature,
                          c.debias_token_threshold, c.debias_trigger)

    def _check_head(self, head) -> None:
        if hasattr(head, "check_model"):
            head.check_model(self.model)
        d = self.runner.embeddings.shape[-1]
        device = self.runner.embeddings.device
        head.to(device)
        with torch.no_grad():
            logits = head(torch.zeros(1, d, device=device))
        if logits.dim() != 2 or logits.shape[0] != 1:
            raise ValueError(f"attribute_head must map (batch, {d}) pooled hidden states to (batch, classes); got {tuple(logits.shape)}")
        if not 0 <= self.config.target_class < logits.shape[1]:
            raise ValueError(f"UDDIAConfig.target_class={self.config.target_class} but the head has {logits.shape[1]} classes")

    @contextlib.contextmanager
    def _frozen(self):
        """Base parameters out of autograd for the call (gradients flow to θ only); flags restored after."""
        flags = [(p, p.requires_grad) for p in self.model.parameters()]
        head_flags = [(p, p.requires_grad) for p in self.attribute_head.parameters()] if self.attribute_head is not None else []
        was_training = self.model.training
        try:
            for p, _ in flags + head_flags:
                p.requires_grad_(False)
            self.model.eval()
            yield
        finally:
            for p, flag in flags + head_flags:
                p.requires_grad_(flag)
            self.model.train(was_training)

    def __enter__(self) -> "UDDIAGenerator":
        return self

    def __exit__(self, *exc) -> None:
        self.adapter.offsets = None  # nothing else to undo: the offset adapter lives only inside generate()

    # ------------------------------------------------------------------ public API
    def __call__(self, text_inputs, return_full_text: bool = True, use_chat_template: bool = False, **generate_kwargs):
        """Like pipeline("text-generation"): a string -> [{"generated_text": ...}] per returned sequence;
        a list of strings -> a list of such lists."""
        if self.tokenizer is None:
            raise ValueError("UDDIAGenerator(...) needs a tokenizer to take strings")
        single = isinstance(text_inputs, str)
        texts = [text_inputs] if single else list(text_inputs)
        if use_chat_template:
            texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                                        add_generation_prompt=True) for t in texts]
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not use_chat_template)
        finally:
            self.tokenizer.padding_side = side
        enc = {k: v.to(self.runner.embeddings.device) for k, v in enc.items()}
        generate_kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        seqs = self.generate(**enc, **generate_kwargs)
        n = seqs.shape[0] // len(texts)
        new = self.tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        results = [[{"generated_text": (texts[i] + new[i * n + k]) if return_full_text else new[i * n + k]}
                    for k in range(n)] for i in range(len(texts))]
        return results[0] if single else results

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, **kwargs):
        """`model.generate`-compatible: returns the sequences (B·n, L + new) or, with return_dict_in_generate,
        a `UDDIAGenerateOutput`. `generator` seeds sampling (default: torch's global RNG, like generate)."""
        if input_ids.dim() != 2 or input_ids.shape[1] < 1:
            raise ValueError(f"input_ids must be (batch, length >= 1), got {tuple(input_ids.shape)}")
        settings = resolve_settings(self.model, input_ids.shape[1], kwargs)
        if attention_mask is None:
            pad = settings.pad_token_id
            eos = settings.eos_token_ids
            if pad is not None and pad not in eos and (input_ids == pad).any():
                attention_mask = (input_ids != pad).long()
            else:
                attention_mask = torch.ones_like(input_ids)
        if settings.num_return_sequences > 1:
            input_ids = input_ids.repeat_interleave(settings.num_return_sequences, dim=0)
            attention_mask = attention_mask.repeat_interleave(settings.num_return_sequences, dim=0)
        if self.config.redo_ppl_threshold is not None and (settings.output_scores or settings.output_logits):
            raise ValueError("output_scores/output_logits are not available with redo; set UDDIAConfig.redo_ppl_threshold=None")
        with self._frozen():
            output = self._generate_with_redo(input_ids, attention_mask.long(), settings, generator)
        self.last_output = output
        return output if settings.return_dict_in_generate else output.sequences

    # ------------------------------------------------------------------ redo
    def _generate_with_redo(self, input_ids, attention_mask, settings: Settings, generator) -> UDDIAGenerateOutput:
        """Run T0, then redo the rows whose perplexity exceeds TH with T - ΔT, ...; keep the first under TH,
        else the lowest-perplexity attempt (UDDIA §3.4)."""
        batch = input_ids.shape[0]
        schedule = self.config.redo_schedule(self.adapter.num_layers)
        best: list[BestAttempt | None] = [None] * batch
        attempts = torch.zeros(batch, dtype=torch.long)
        pending = torch.arange(batch, device=input_ids.device)
        last = None
        for tuned in schedule:
            attempt = self._decode(input_ids[pending], attention_mask[pending], settings, tuned, generator)
            last = attempt
            ppl = attempt.perplexity
            for j, row in enumerate(pending.tolist()):
                attempts[row] += 1
                length = int(attempt.lengths[j])
                entry = BestAttempt(perplexity=float(ppl[j]), tokens=attempt.tokens[j, :length], tuned_layers=tuned,
                                    adapted_steps=int(attempt.adapted[j]), generated_tokens=length)
                if best[row] is None or entry.perplexity < best[row].perplexity:
                    best[row] = entry
            threshold = self.config.redo_ppl_threshold
            if threshold is None:
                break
            pending = pending[(ppl > threshold).to(pending.device)]
            if len(pending) == 0:
                break
        return self._assemble(input_ids, best, attempts, settings, last if len(schedule) == 1 else None)

    def _assemble(self, input_ids, best: list[BestAttempt], attempts, settings: Settings,
                  single: _Attempt | None) -> UDDIAGenerateOutput:
        if single is not None:  # no redo: the attempt's tokens as generate() would return them (pads included)
            new = single.tokens
        else:
            width = max(len(entry.tokens) for entry in best)
            pad = settings.pad_token_id if settings.pad_token_id is not None else 0
            new = input_ids.new_full((len(best), width), pad)
            for row, entry in enumerate(best):
                new[row, : len(entry.tokens)] = entry.tokens
        return UDDIAGenerateOutput(
            sequences=torch.cat([input_ids, new], dim=1),
            scores=tuple(single.scores) if single is not None and settings.output_scores else None,
            logits=tuple(single.logits) if single is not None and settings.output_logits else None,
            adapted_steps=torch.tensor([entry.adapted_steps for entry in best]),
            generated_tokens=torch.tensor([entry.generated_tokens for entry in best]),
            perplexity=torch.tensor([entry.perplexity for entry in best]),
            tuned_layers=torch.tensor([entry.tuned_layers for entry in best]),
            attempts=attempts,
        )

    # ------------------------------------------------------------------ decoding loop
    def _prefill(self, input_ids, attention_mask) -> DecodeState:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        mask = None if bool((attention_mask == 1).all()) else attention_mask  # generate() drops an all-ones mask
        positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        with self.replay.recording():
            logits, hidden = self.runner(cache, mask, positions, input_ids=input_ids)
        check_forkable(cache)
        valid = attention_mask.float()
        embeds = self.runner.embeddings[input_ids].float() * valid[..., None]
        return DecodeState(
            cache=cache, mask=mask, positions=positions[:, -1:], current=input_ids[:, -1], logits=logits,
            hidden=hidden[:, -1], context_sum=(hidden[:, :-1].float() * valid[:, :-1, None]).sum(1),
            context_count=valid[:, :-1].sum(1), embed_sum=embeds.sum(1), embed_count=valid.sum(1),
            generated_sum=torch.zeros_like(hidden[:, -1], dtype=torch.float32), generated_count=valid.new_zeros(valid.shape[0]),
        )

    def _advance(self, state: DecodeState, tokens: torch.Tensor, num_params: int = 0) -> None:
        """Feed the chosen tokens to the unadapted model on the main cache (one plain decoding step).

        With `num_params` > 0 the pass runs with θ = 0 (B, P) attached and autograd on: it computes the same
        numbers as without (x + 0 = x) and doubles as the adapted pass of the next adaptation (`MainGraph`)."""
        state.context_sum = state.context_sum + state.hidden.float()
        state.context_count = state.context_count + 1
        if state.steps > 0:  # the current token was generated (at the first advance it is the prompt's last)
            state.generated_sum = state.generated_sum + state.hidden.float()
            state.generated_count = state.generated_count + 1
        if state.mask is not None:
            state.mask = torch.cat([state.mask, state.mask.new_ones(state.mask.shape[0], 1)], dim=1)
        state.positions = state.positions + 1
        theta = torch.zeros(tokens.shape[0], num_params, device=tokens.device, requires_grad=True) if num_params else None
        self.adapter.offsets = theta
        try:  # (slice inside the grad mode: slicing under no_grad would cut the graph off)
            with torch.set_grad_enabled(theta is not None), self.replay.recording():
                logits, hidden = self.runner(state.cache, state.mask, state.positions, input_ids=tokens[:, None])
                current = hidden[:, -1]
        finally:
            self.adapter.offsets = None
        state.graph = None if theta is None else MainGraph(theta, logits, current, detach_in_place(state.cache))
        state.logits, state.hidden = logits.detach(), current.detach()
        state.current = tokens
        state.embed_sum = state.embed_sum + self.runner.embeddings[tokens].float()
        state.embed_count = state.embed_count + 1
        state.steps += 1

    def _who_adapts(self, state: DecodeState, unfinished: torch.Tensor):
        """(detox rows, debias rows) as bool (B,): the head's trigger and the Hellinger trigger."""
        c = self.config
        detox = torch.zeros_like(unfinished)
        if self.attribute_head is not None:
            if c.trigger_threshold is None:
                detox = unfinished.clone()
            else:
                probs = torch.softmax(self.attribute_head(state.pooled(c.trigger_pooling)).float(), dim=-1)
                detox = unfinished & ((1 - probs[:, c.target_class]) > c.trigger_threshold)
        debias = torch.zeros_like(unfinished)
        if self.debias is not None:
            debias = unfinished & self.debias.triggered(torch.softmax(state.logits, dim=-1))
        return detox, debias

    @torch.no_grad()
    def _decode(self, input_ids, attention_mask, settings: Settings, num_tuned_layers: int, generator) -> _Attempt:
        batch, device = input_ids.shape[0], input_ids.device
        processors = build_processors(settings)
        eos = torch.tensor(settings.eos_token_ids, device=device)
        unfinished = torch.ones(batch, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch, dtype=torch.long, device=device)
        nll = torch.zeros(batch, device=device)
        adapted = torch.zeros(batch, dtype=torch.long, device=device)
        sequences, new_tokens, scores_out, logits_out = input_ids, [], [], []
        with self.adapter.attached(num_tuned_layers) as num_params, self.runner.capturing(), \
                self.replay.active(self.adapter.num_layers - num_tuned_layers):
            c = self.config
            adaptation = Adaptation(runner=self.runner, adapter=self.adapter, num_params=num_params, lr=c.lr,
                                    steps=c.steps_per_token, lookahead=c.lookahead_steps, head=self.attribute_head,
                                    target_class=c.target_class, debias=self.debias, debias_weight=c.debias_weight,
                                    replay=self.replay)
            state = self._prefill(input_ids, attention_mask)
            for step in range(settings.max_new_tokens):
                scores = state.logits.clone()
                detox, debias = self._who_adapts(state, unfinished)
                chosen = (detox | debias).nonzero().squeeze(1)
                if len(chosen):
                    log_ratio, _, _ = adaptation.run(state, chosen, detox[chosen], debias[chosen])
                    scores[chosen] = fuse(state.logits[chosen], log_ratio, self.config.fusion_weight)
                    adapted[chosen] += 1
                scores = processors(sequences, scores)
                if settings.output_scores:
                    scores_out.append(scores)
                if settings.output_logits:
                    logits_out.append(state.logits)
                tokens = select_tokens(scores, settings.do_sample, generator)
                if settings.pad_token_id is not None and len(eos):
                    tokens = torch.where(unfinished, tokens, torch.full_like(tokens, settings.pad_token_id))
                # perplexity under the unadapted model comes free: P_base is this step's unadapted logits
                token_logp = torch.log_softmax(state.logits, dim=-1).gather(1, tokens[:, None]).squeeze(1)
                nll = nll - token_logp * unfinished
                lengths = lengths + unfinished.long()
                sequences = torch.cat([sequences, tokens[:, None]], dim=1)
                new_tokens.append(tokens)
                if len(eos):
                    unfinished = unfinished & ~torch.isin(tokens, eos)
                if not bool(unfinished.any()) or step == settings.max_new_tokens - 1:
                    break
                self._advance(state, tokens, num_params)
        return _Attempt(torch.stack(new_tokens, dim=1), lengths.cpu(), nll.cpu(), adapted.cpu(), scores_out, logits_out)
