"""AnyDressing's ablation measurements (Table 3) on held-out toy people wearing an upper and a lower
garment, each on the same weights and the same noise.

- ``eps_fall_t``: the relative fall of the garment-region ε-MSE at t when DressingNet reads the
  garments (λ as trained, no guidance) against the plain denoiser, (plain − read) / plain.
- Sampling as the paper does (§5.1, eq. 16): img2img from the person with its garments painted
  grey, DDIM, ε̂ = ω·ε(z, C_g) + (1 − ω)·ε(z), the no-garment branch being the frozen DressingNet
  itself; ``color_error`` (ΔE between the mean L*a*b* colours of the sample and of the ground truth
  inside each garment's region: the garment as drawn, pattern included) and the leakages of
  evaluate.py.
- The paired garment swap: the same person and noise, ONE garment replaced by another person's
  garment of the same category and another colour. Colours are region means as drawn: the donor's
  is its garment's mean colour on the donor's own picture. ``swap_in``: how far the swapped
  garment's region moved towards the donor's colour, as a fraction of the own-to-donor colour
  distance (1 = all the way, 0 = not at all); ``swap_out``: the same movement inside the OTHER
  garment's region (ideal 0).
- ``instrument_gate`` scores the ground truth, the img2img start and another person's picture with
  the same functions, and an oracle swap, so that a table is trusted only once the metrics
  separate right from wrong.
- ``loc``: IGL's localisation measured directly, each garment's Dressing-Attention mass that comes
  from queries inside its own mask, Σ_t A_k(t)·M_k(t) / Σ_t A_k(t), averaged over sites and
  garments at t = ``localisation_timestep``; ``loc_chance`` is the same under uniform attention
  (the mask's area share). The tiled "Base" reads one joined garment, so it has no per-garment map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...models.anydressing.config import DressingConfig
from ...models.anydressing.dressing_run import DressingRun
from ...models.diffusers_host import DiffusersReferenceHost
from ...models.masks import mask_to_tokens
from ...models.sites import SITES_BY_NAME
from ..anydressing.components import BaseComponents, encode_text
from ..anydressing.data import (
    TILED_CATEGORY,
    DressingSample,
    ToyDressing,
    collate,
    tiled,
)
from ..anydressing.evaluate import (
    denoise,
    garment_region_noise_error,
    garment_scores,
    grey_out,
)
from ..anydressing.steps import DressingTrainables, encode_garments, reading_config
from ..metrics.color import region_mean_lab
from ..metrics.inputs import delta_e
from .stats import score_table

SWAP_CATEGORIES = ("upper", "lower")


@dataclass(frozen=True)
class DressingProtocol:
    """How the dressing variants are sampled and measured.

    Args:
        strength: λ of eq. 6 at sampling (the strength the variants were trained with).
        guidance: ω of eq. 16 (the paper samples with 6.0).
        noise_strength: img2img: fraction of the schedule noised.
        steps: DDIM steps over the full schedule (the paper uses 30).
        error_timesteps: timesteps of the garment-region ε-MSE.
        localisation_timestep: timestep of the attention-localisation measurement.
    """

    strength: float = 1.0
    guidance: float = 6.0
    noise_strength: float = 0.7
    steps: int = 20
    error_timesteps: tuple[int, ...] = (300, 500)
    localisation_timestep: int = 500


def _image(tensor: torch.Tensor) -> np.ndarray:
    return (tensor.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)  # (H, W, 3)


class DressingReader:
    """One variant's DressingNet read over one sample's garments, usable as ``denoise``'s ``read``
    inside its ``with`` block, which installs the read's processors once (calls of the plain UNet
    there run unchanged: the processors defer to the original ones while no run is active) and
    releases the run on exit.

    Args:
        components: the frozen base.
        config, trainables: the variant's weights.
        sample: whose garments are read.
        strength: λ.
        record_maps: keep the IGL maps of the last call.
    """

    def __init__(self, components: BaseComponents, config: DressingConfig, trainables: DressingTrainables,
                 sample: DressingSample, strength: float, record_maps: bool = False) -> None:
        self.components = components
        batch = collate([tiled(sample) if config.slots == (TILED_CATEGORY,) else sample])
        self.host = DiffusersReferenceHost(components.unet, reading_config(config, strength), trainables.projections)
        with self.host:
            bank = encode_garments(components, trainables, config, batch.garments, batch.categories)
        self.run = DressingRun(self.host.config, bank, trainables.projections, record_maps=record_maps)

    def __enter__(self) -> "DressingReader":
        self.host.install()
        return self

    def __exit__(self, *exc) -> None:
        self.run.release()
        self.host.remove()

    def __call__(self, latents: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.host.forward(self.run, latents, timesteps, context, cond_or_uncond=[0]).sample

    def guided(self, guidance: float):
        """eq. 16: ω·ε(z, C_g) + (1 − ω)·ε(z), the no-garment branch being the frozen denoiser."""
        def read(latents: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
            plain = self.components.unet(latents, timesteps, encoder_hidden_states=context).sample
            return guidance * self(latents, timesteps, context) + (1.0 - guidance) * plain
        return read

    def sample(self, start: torch.Tensor, protocol: "DressingProtocol", noise_seed: int) -> np.ndarray:
        """Img2img from ``start`` (1, 3, H, W) with eq. 16's guidance, as an (H, W, 3) uint8 picture."""
        generator = torch.Generator().manual_seed(noise_seed)
        return _image(denoise(self.components, start, protocol.noise_strength, protocol.steps, generator,
                              self.guided(protocol.guidance))[0])


def swapped(sample: DressingSample, donor: DressingSample, category: str) -> DressingSample:
    """``sample`` with its garment of ``category`` replaced by ``donor``'s (masks stay the person's)."""
    index = sample.categories.index(category)
    garments = sample.garments.clone()
    garments[index] = donor.garments[donor.categories.index(category)]
    return DressingSample(sample.person, garments, sample.categories, sample.garment_masks, sample.caption)


def pick_donor(dataset: ToyDressing, positions: list[int], position: int, category: str) -> int:
    """The next held-out person whose garment of ``category`` has another main colour."""
    own = dataset.person(position).garments[category].spec.color
    start = positions.index(position)
    for offset in range(1, len(positions)):
        other = positions[(start + offset) % len(positions)]
        if dataset.person(other).garments[category].spec.color.name != own.name:
            return other
    return positions[(start + 1) % len(positions)]


def donor_color(dataset: ToyDressing, donor: int, category: str) -> np.ndarray:
    """The mean L*a*b* colour (3,) of held-out person ``donor``'s garment of ``category`` as drawn on
    the donor's own picture."""
    person = dataset.person(donor)
    return region_mean_lab(person.image, person.masks[category])


def swap_scores(image: np.ndarray, swap_image: np.ndarray, truth: np.ndarray, region: np.ndarray,
                other_region: np.ndarray, new_color: np.ndarray) -> dict[str, float]:
    """``swap_in`` / ``swap_out``: how far the mean colour inside ``region`` / ``other_region`` moved
    from ``image`` to ``swap_image`` towards ``new_color`` (Lab, (3,)), as a fraction of the true
    garment's distance to it (at least 1 ΔE)."""
    distance = max(float(delta_e(region_mean_lab(truth, region), new_color)), 1.0)
    scores = {}
    for name, mask in (("swap_in", region), ("swap_out", other_region)):
        before = float(delta_e(region_mean_lab(image, mask), new_color))
        after = float(delta_e(region_mean_lab(swap_image, mask), new_color))
        scores[name] = (before - after) / distance
    return scores


def painted(image: np.ndarray, mask: np.ndarray, reference: np.ndarray, reference_mask: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``mask`` painted flat in the mean sRGB colour of ``reference``
    inside ``reference_mask``: an oracle that dresses the region in another garment's colour."""
    out = image.copy()
    out[mask.astype(bool)] = reference[reference_mask.astype(bool)].mean(0).round().astype(np.uint8)
    return out


GATE_ROWS = ("truth itself", "img2img start", "another person")


def instrument_gate(dataset: ToyDressing, count: int) -> dict[str, dict[str, float]]:
    """The instrument's check, no model involved, on the first ``count`` held-out people wearing an
    upper and a lower garment: ``garment_scores`` of the true picture itself, of the img2img start
    (garments painted grey) and of another held-out person's picture, each against the truth; and
    the swap measure of an oracle that paints the swapped region in the donor garment's mean colour
    (``swap_in`` near 1, ``swap_out`` 0 by design) beside a sampler that ignores the swap (0)."""
    positions = dataset.groups.get(SWAP_CATEGORIES, [])
    if len(positions) < 2:
        raise ValueError("the held-out set has fewer than two people wearing an upper and a lower garment; raise --count")
    rows: dict[str, dict[str, list[float]]] = {row: {} for row in GATE_ROWS + ("oracle swap", "swap ignored")}

    def add(row: str, scores: dict[str, float]) -> None:
        for name, value in scores.items():
            rows[row].setdefault(name, []).append(value)

    measured = positions[:count]
    for index, position in enumerate(measured):
        sample, truth = dataset[position], dataset.person(position)
        masks = {c: truth.masks[c] for c in SWAP_CATEGORIES}
        specs = {c: truth.garments[c].spec for c in SWAP_CATEGORIES}
        start = _image(grey_out(sample.person, sample.garment_masks))
        stranger = dataset.person(measured[(index + 1) % len(measured)]).image
        for row, image in zip(GATE_ROWS, (truth.image, start, stranger)):
            for scores in garment_scores(image, truth.image, masks, truth.masks["person"], specs):
                add(row, scores)
        for category in SWAP_CATEGORIES:
            donor = pick_donor(dataset, positions, position, category)
            donor_person = dataset.person(donor)
            other = next(c for c in SWAP_CATEGORIES if c != category)
            new_color = donor_color(dataset, donor, category)
            oracle = painted(truth.image, masks[category], donor_person.image, donor_person.masks[category])
            add("oracle swap", swap_scores(truth.image, oracle, truth.image, masks[category], masks[other], new_color))
            add("swap ignored", swap_scores(truth.image, truth.image, truth.image, masks[category], masks[other],
                                            new_color))
    return {row: {name: float(np.mean(values)) for name, values in metrics.items()} for row, metrics in rows.items()}


def gate_passes(gate: dict[str, dict[str, float]]) -> bool:
    """Whether the colour error and the fidelity rank the truth above both wrong pictures, and the
    oracle's ``swap_in`` reaches 0.9 with ``swap_out`` under 0.1 while ignoring the swap scores 0."""
    truth = gate["truth itself"]
    for wrong in GATE_ROWS[1:]:
        if not (truth["color_error"] < gate[wrong]["color_error"] and truth["fidelity"] > gate[wrong]["fidelity"]):
            return False
    oracle, ignored = gate["oracle swap"], gate["swap ignored"]
    return oracle["swap_in"] >= 0.9 and abs(oracle["swap_out"]) < 0.1 and abs(ignored["swap_in"]) < 1e-9


def gate_report(gate: dict[str, dict[str, float]]) -> str:
    """The instrument gate as a markdown table and its verdict."""
    columns = ("color_error", "fidelity", "leak_garments", "leak_background", "swap_in", "swap_out")
    lines = [score_table("instrument check", gate, columns)]
    verdict = "PASS" if gate_passes(gate) else "FAIL"
    rule = ("colour error and fidelity rank the truth above the img2img start and another person; an oracle "
            "swap scores swap_in >= 0.9 and swap_out ~ 0, an ignored swap 0")
    return "\n".join(lines + ["", f"Instrument gate: {verdict} ({rule})"])


@torch.no_grad()
def localisation(reader: DressingReader, components: BaseComponents, sample: DressingSample, timestep: int,
                 generator: torch.Generator) -> tuple[float, float]:
    """(attention mass inside the own mask, the same under uniform attention), means over sites and garments."""
    latents = components.vae.encode(sample.person[None])  # (1, 4, h, w)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    t = torch.tensor([timestep], device=latents.device)
    reader(components.scheduler.add_noise(latents, noise, t), t, encode_text(components, [""]))
    inside, chance = [], []
    for name, maps in reader.run.maps.items():  # maps (1, T, N)
        grid = SITES_BY_NAME[name].token_grid(*latents.shape[-2:])
        masks = mask_to_tokens(sample.garment_masks.to(maps), grid)[..., 0].T  # (T, N)
        weights = maps[0]  # (T, N)
        inside.append(float(((weights * masks).sum(0) / weights.sum(0).clamp_min(1e-8)).mean()))
        chance.append(float(masks.mean(0).mean()))
    return float(np.mean(inside)), float(np.mean(chance))


@torch.no_grad()
def evaluate_variant(components: BaseComponents, dataset: ToyDressing, count: int, config: DressingConfig,
                     trainables: DressingTrainables, protocol: DressingProtocol, seed: int = 0) -> dict[str, float]:
    """Means over the first ``count`` held-out people wearing an upper and a lower garment."""
    components.unet.eval()
    positions = dataset.groups.get(SWAP_CATEGORIES, [])
    if len(positions) < 2:
        raise ValueError("the held-out set has fewer than two people wearing an upper and a lower garment; raise --count")
    measured = positions[:count]
    totals: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        totals.setdefault(name, []).append(value)

    tiled_variant = config.slots == (TILED_CATEGORY,)
    for position in measured:
        sample, truth = dataset[position], dataset.person(position)
        start = grey_out(sample.person, sample.garment_masks)[None]  # (1, 3, H, W)
        noise_seed = seed * 1_000_003 + position
        with DressingReader(components, config, trainables, sample, protocol.strength,
                            record_maps=not tiled_variant) as reader:
            for t in protocol.error_timesteps:
                plain = garment_region_noise_error(components, sample.person[None], sample.garment_masks, t,
                                                   torch.Generator().manual_seed(noise_seed + t))
                read = garment_region_noise_error(components, sample.person[None], sample.garment_masks, t,
                                                  torch.Generator().manual_seed(noise_seed + t), reader)
                add(f"eps_fall_{t}", (plain - read) / plain)
            if not tiled_variant:
                inside, chance = localisation(reader, components, sample, protocol.localisation_timestep,
                                              torch.Generator().manual_seed(noise_seed + 7))
                add("loc", inside)
                add("loc_chance", chance)
                reader.run.maps.clear()
            image = reader.sample(start, protocol, noise_seed)
        masks = {c: truth.masks[c] for c in sample.categories}
        specs = {c: truth.garments[c].spec for c in sample.categories}
        for scores in garment_scores(image, truth.image, masks, truth.masks["person"], specs):
            for name, value in scores.items():
                add(name, value)
        for category in SWAP_CATEGORIES:
            donor = pick_donor(dataset, positions, position, category)
            new_color = donor_color(dataset, donor, category)
            with DressingReader(components, config, trainables, swapped(sample, dataset[donor], category),
                                protocol.strength) as swap_reader:
                swap_image = swap_reader.sample(start, protocol, noise_seed)
            other = next(c for c in SWAP_CATEGORIES if c != category)
            for name, value in swap_scores(image, swap_image, truth.image, masks[category], masks[other],
                                           new_color).items():
                add(name, value)
    return {name: float(np.mean(values)) for name, values in totals.items()} | {"people": len(measured)}
