"""Findings about the data a run sees: its splits, leakage across them, and the volumes themselves.

Pure NumPy over labels, groups, split indices and the (memory-mapped) volumes,
so the dashboard can run them without TensorFlow, before or after training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from engine.doctor.findings import Finding, Severity

SPLIT_TITLES = {"train": "training", "val": "validation", "test": "test"}
# A validation / test class share this far from the training split's is called out.
SHIFT_SHARE = 0.15
# The smallest training class below this share of the largest is imbalance.
IMBALANCE_RATIO = 1 / 3
# Fewer validation / test samples than this in a class make its metrics coarse.
MIN_PER_CLASS = 5
# Near-duplicates (shifted and/or noisy copies): the nearest candidates by signature (a blurred volume's
# block means, at most 8 per edge, z-scored) with at least this correlation ...
CANDIDATE_CORRELATION = 0.6
NEAR_DUPLICATE_CANDIDATES = 10
SIGNATURE_EDGE = 8
SIGNATURE_BLUR = 1.0
# ... are aligned over every shift of up to this many voxels per axis, and a pair whose voxels then differ by
# at most this share of the intensity range (RMS; 0.03 of 0-255 is 7.7 grey levels) is a near-duplicate.
# docs/doctor-root-causes.md gives the measured tolerance (tools/near_duplicate_tolerance.py).
NEAR_DUPLICATE_MAX_SHIFT = 2
NEAR_DUPLICATE_DIFFERENCE = 0.03
CHUNK = 256
# A one-number rule (class medians of mean intensity or foreground size) this accurate is a shortcut.
SHORTCUT_ACCURACY = 0.9
SHORTCUT_MARGIN = 0.25


def _name(class_names: Sequence[str], index: int) -> str:
    return str(class_names[index]) if index < len(class_names) else str(index)


def split_findings(split_labels: Mapping[str, np.ndarray], class_names: Sequence[str], *,
                   predefined: bool = False, class_weight: str | None = None) -> list[Finding]:
    """Single-class, shifted, imbalanced and too-small splits from the labels of each split present."""
    num_classes = len(class_names)
    counts = {split: np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]
              for split, labels in split_labels.items() if len(labels)}
    which = "predefined " if predefined else ""
    found: list[Finding] = []
    train = counts.get("train")
    for split in ("val", "test"):
        if split not in counts:
            continue
        split_counts, title = counts[split], SPLIT_TITLES[split]
        evidence = {"split": split, "counts": dict(zip(map(str, class_names), split_counts.tolist())),
                    "predefined": predefined}
        present = np.flatnonzero(split_counts)
        if num_classes >= 2 and len(present) == 1:
            found.append(Finding(
                id="single_class_split", severity=Severity.PROBLEM, evidence=evidence,
                title=f"The {which}{title} split holds one class only: all {split_counts.sum()} samples are "
                f"'{_name(class_names, int(present[0]))}'",
                suggestion="Its accuracy only says how often the model answers that class, and loss 0 with "
                "accuracy 1.0 can mean a model that always answers it. Split stratified by class (the lab's "
                "splits do; Keras' validation_split takes the last rows of a class-sorted array).",
            ))
            continue
        if train is not None and train.sum():
            train_share, split_share = train / train.sum(), split_counts / split_counts.sum()
            worst = int(np.argmax(np.abs(split_share - train_share)))
            if abs(split_share[worst] - train_share[worst]) >= SHIFT_SHARE:
                found.append(Finding(
                    id="split_shift", severity=Severity.WARNING,
                    evidence=evidence | {"train_share": train_share.tolist(), "split_share": split_share.tolist()},
                    title=f"Class '{_name(class_names, worst)}' is {split_share[worst]:.0%} of the {which}{title} "
                    f"split but {train_share[worst]:.0%} of the training split",
                    suggestion="Metrics on this split weigh the classes differently from training; stratify the "
                    "split or report per-class metrics (sensitivity, specificity).",
                ))
        smallest = int(split_counts[present].min()) if len(present) else 0
        if len(present) and smallest < MIN_PER_CLASS:
            found.append(Finding(
                id="few_samples", severity=Severity.WARNING, evidence=evidence | {"smallest_class": smallest},
                title=f"The {which}{title} split has {split_counts.sum()} samples, as few as {smallest} in a class: "
                f"one sample moves its accuracy by {1 / split_counts.sum():.1%}",
                suggestion="Enlarge the split (validation / test fraction) or use k-fold cross-validation before "
                "comparing runs.",
            ))
    if train is not None and num_classes >= 2 and train.max() > 0:
        ratio = train.min() / train.max()
        if ratio < IMBALANCE_RATIO and class_weight != "balanced":
            rare, common = int(np.argmin(train)), int(np.argmax(train))
            found.append(Finding(
                id="imbalance", severity=Severity.WARNING if class_weight == "none" else Severity.NOTE,
                evidence={"train_counts": dict(zip(map(str, class_names), train.tolist())), "ratio": float(ratio),
                          "class_weight": class_weight},
                title=f"Class imbalance: '{_name(class_names, rare)}' has {train[rare]} training samples against "
                f"{train[common]} of '{_name(class_names, common)}'"
                + (" and the run uses no class weights" if class_weight == "none" else ""),
                suggestion="Use balanced class weights (or focal loss) and judge the run by per-class recall, not "
                "accuracy alone.",
            ))
    return found


def content_hashes(x: np.ndarray, indices: np.ndarray) -> list[str]:
    """A content hash (BLAKE2b of the stored bytes) of each volume in ``indices``."""
    hashes = []
    for start in range(0, len(indices), CHUNK):
        block = np.asarray(x[np.sort(indices[start:start + CHUNK])])
        order = np.argsort(np.argsort(indices[start:start + CHUNK]))
        hashes.extend(hashlib.blake2b(np.ascontiguousarray(block[i]).tobytes(), digest_size=16).hexdigest()
                      for i in order)
    return hashes


def _centroid(blurred: np.ndarray) -> np.ndarray | None:
    """The centre of mass of what is brighter than halfway between the volume's median and its maximum: the
    object, not the background's noise (None for a flat volume)."""
    from scipy import ndimage

    median = np.median(blurred)
    weights = np.clip(blurred - (median + blurred.max()) / 2, 0, None)
    return np.asarray(ndimage.center_of_mass(weights)) if weights.sum() > 0 else None


def signatures(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(N, k) unit vectors, invariant to small shifts (see ``profiles``)."""
    return profiles(x, indices)[0]


def profiles(x: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None], list[float]]:
    """(N, k) unit vectors, invariant to small shifts: each volume blurred (Gaussian, ``SIGNATURE_BLUR`` voxels),
    moved so the centre of mass of its brighter half sits at the grid's centre (scipy.ndimage), reduced to block
    means (at most 8 per edge), centred and normalised. A copy shifted by a voxel or two, or with a little
    noise, keeps nearly the signature of its source. With them, each volume's centre of mass (None if flat) and
    intensity range."""
    from scipy import ndimage

    rows, centres, ranges = [], [], []
    for index in np.asarray(indices):
        raw = _volume(x, int(index))
        ranges.append(intensity_range(raw))
        volume = ndimage.gaussian_filter(raw, SIGNATURE_BLUR, mode="nearest")
        centre = _centroid(volume)
        centres.append(centre)
        if centre is not None:
            volume = ndimage.shift(volume, (np.asarray(volume.shape) - 1) / 2 - centre, order=1, mode="nearest")
        factors = [max(1, edge // SIGNATURE_EDGE) for edge in volume.shape]
        cut = [edge - edge % factor for edge, factor in zip(volume.shape, factors)]
        volume = volume[:cut[0], :cut[1], :cut[2]]
        shape = [v for c, f in zip(cut, factors) for v in (c // f, f)]
        means = volume.reshape(shape).mean(axis=(1, 3, 5)).ravel()
        means = means - means.mean()
        norm = np.linalg.norm(means)
        rows.append(means / norm if norm > 0 else np.zeros_like(means))
    return (np.asarray(rows, dtype=np.float32) if rows else np.zeros((0, 1), dtype=np.float32)), centres, ranges


def _volume(x: np.ndarray, index: int) -> np.ndarray:
    volume = np.asarray(x[int(index)], dtype=np.float32)
    return volume.reshape(volume.shape[:3]) if volume.ndim == 4 else volume


def intensity_range(volume: np.ndarray) -> float:
    """The volume's intensity range, robust to a few outlying voxels (0.1th to 99.9th percentile)."""
    low, high = np.percentile(volume, [0.1, 99.9])
    return float(high - low)


def aligned_difference(reference: np.ndarray, other: np.ndarray, max_shift: int = NEAR_DUPLICATE_MAX_SHIFT,
                       centres: tuple[np.ndarray | None, np.ndarray | None] | None = None,
                       scale: float | None = None) -> tuple[float, tuple[int, int, int]]:
    """The smallest RMS voxel difference between two volumes over integer shifts of ``other`` of up to
    ``max_shift`` voxels per axis (compared where they overlap), as a share of the reference's intensity
    range, and that shift (dz, dy, dx). The shifts tried are those within one voxel of the difference of the
    two centres of mass (all of them when a volume is flat). 0 for an exact copy; a copy with Gaussian noise
    of sigma s (as a share of the range) scores about s."""
    from scipy import ndimage

    scale = intensity_range(reference) if scale is None else scale
    if reference.shape != other.shape or scale <= 0:
        return float("inf"), (0, 0, 0)
    if centres is None:
        centres = (_centroid(ndimage.gaussian_filter(reference, SIGNATURE_BLUR, mode="nearest")),
                   _centroid(ndimage.gaussian_filter(other, SIGNATURE_BLUR, mode="nearest")))
    ours_centre, theirs_centre = centres
    if ours_centre is None or theirs_centre is None:
        axes = [range(-max_shift, max_shift + 1)] * 3
    else:
        guess = np.clip(np.rint(theirs_centre - ours_centre).astype(int), -max_shift, max_shift)
        axes = [range(max(-max_shift, g - 1), min(max_shift, g + 1) + 1) for g in guess]
    best, best_shift = float("inf"), (0, 0, 0)
    for shift in ((dz, dy, dx) for dz in axes[0] for dy in axes[1] for dx in axes[2]):
        if any(abs(d) >= edge for d, edge in zip(shift, reference.shape)):
            continue
        ours = tuple(slice(max(0, -d), edge - max(0, d)) for d, edge in zip(shift, reference.shape))
        theirs = tuple(slice(max(0, d), edge - max(0, -d)) for d, edge in zip(shift, reference.shape))
        difference = (reference[ours] - other[theirs]).ravel()
        rms = float(np.sqrt(np.dot(difference, difference) / difference.size))
        if rms < best:
            best, best_shift = rms, shift
    return best / scale, best_shift


def near_duplicate_pairs(x: np.ndarray, first: np.ndarray, second: np.ndarray,
                         first_profiles: tuple[np.ndarray, list, list] | None = None,
                         second_profiles: tuple[np.ndarray, list, list] | None = None,
                         max_difference: float = NEAR_DUPLICATE_DIFFERENCE,
                         ) -> list[tuple[int, int, float, tuple[int, int, int]]]:
    """(index in ``first``, index in ``second``, difference, shift) of each volume of ``second`` that is a
    shifted and/or noisy copy of one in ``first``: its ``NEAR_DUPLICATE_CANDIDATES`` nearest volumes by
    signature (at least ``CANDIDATE_CORRELATION``) are aligned (``aligned_difference``), nearest first, and
    the first that differs by at most ``max_difference`` of the intensity range is its source."""
    first, second = np.asarray(first), np.asarray(second)
    if not len(first) or not len(second):
        return []
    first_vectors, first_centres, first_ranges = profiles(x, first) if first_profiles is None else first_profiles
    second_vectors, second_centres, _ = profiles(x, second) if second_profiles is None else second_profiles
    found = []
    keep = min(NEAR_DUPLICATE_CANDIDATES, len(first))
    for start in range(0, len(second), CHUNK):
        similarity = second_vectors[start:start + CHUNK] @ first_vectors.T
        nearest = np.argsort(-similarity, axis=1)[:, :keep]
        for row in range(len(similarity)):
            candidates = [int(c) for c in nearest[row] if similarity[row, c] >= CANDIDATE_CORRELATION]
            other = _volume(x, second[start + row]) if candidates else None
            for candidate in candidates:
                difference, shift = aligned_difference(
                    _volume(x, first[candidate]), other,
                    centres=(first_centres[candidate], second_centres[start + row]), scale=first_ranges[candidate])
                if difference <= max_difference:
                    found.append((candidate, start + row, difference, shift))
                    break
    return found


def name_ranges(names: Sequence[str]) -> str:
    """Sorted group names with runs of consecutive numbered names folded: "P00-P03, P07, liver-2"."""
    import re

    def parts(name: str):
        match = re.fullmatch(r"(.*?)(\d+)", name)
        return (match.group(1), len(match.group(2)), int(match.group(2))) if match else None

    ordered = sorted(set(map(str, names)), key=lambda n: (parts(n)[:2] + (parts(n)[2], "") if parts(n) else
                                                          (n, 0, 0, n)))
    out: list[list[str]] = []
    for name in ordered:
        here, last = parts(name), parts(out[-1][-1]) if out else None
        if here and last and here[:2] == last[:2] and here[2] == last[2] + 1:
            out[-1].append(name)
        else:
            out.append([name])
    return ", ".join(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" if len(run) > 2 else f"{run[0]}, {run[1]}"
                     for run in out)


def leakage_findings(x: np.ndarray, splits: Mapping[str, np.ndarray], groups: np.ndarray | None,
                     sample_ids: np.ndarray | None = None,
                     group_names: Sequence[str] | None = None) -> list[Finding]:
    """Identical volumes, near-identical volumes and shared groups across the splits; shared groups are named
    by ``group_names`` (the name of each group code, e.g. the CSV's patient ids) when given."""
    ids = np.arange(len(x)) if sample_ids is None else np.asarray(sample_ids)
    names = [name for name in ("train", "val", "test") if name in splits and len(splits[name])]
    found: list[Finding] = []
    hashes = {name: content_hashes(x, np.asarray(splits[name])) for name in names}
    exact, examples = {}, []
    for i, first in enumerate(names):
        seen = {h: index for index, h in zip(splits[first], hashes[first])}
        for second in names[i + 1:]:
            pairs = [(int(ids[seen[h]]), int(ids[index])) for index, h in zip(splits[second], hashes[second])
                     if h in seen]
            if pairs:
                exact[f"{first}-{second}"] = len(pairs)
                examples.extend(pairs[:3])
    if exact:
        total = sum(exact.values())
        found.append(Finding(
            id="duplicates_across_splits", severity=Severity.PROBLEM,
            evidence={"pairs": exact, "examples": examples[:6]},
            title=f"Leakage: {total} volume(s) appear identically in two splits ("
            + ", ".join(f"{pair}: {n}" for pair, n in exact.items()) + ")",
            suggestion="The model is scored on samples it trained on: remove the duplicates before splitting, or "
            "give copies of one source the same group so they stay in one split.",
        ))
    near, near_examples, near_shifts = {}, [], []
    vectors = {name: profiles(x, np.asarray(splits[name])) for name in names}
    exact_pairs = set(map(tuple, examples))
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            count = 0
            pairs = near_duplicate_pairs(x, np.asarray(splits[first]), np.asarray(splits[second]),
                                         vectors[first], vectors[second])
            for a, b, difference, shift in pairs:
                if hashes[first][a] == hashes[second][b]:
                    continue  # an exact copy, reported above
                count += 1
                pair = (int(ids[splits[first][a]]), int(ids[splits[second][b]]))
                if len(near_examples) < 6 and pair not in exact_pairs:
                    near_examples.append(pair)
                    near_shifts.append({"pair": list(pair), "shift_voxels": list(shift),
                                        "difference": round(difference, 4)})
            if count:
                near[f"{first}-{second}"] = count
    if near:
        found.append(Finding(
            id="near_duplicates", severity=Severity.WARNING,
            evidence={"pairs": near, "examples": near_examples, "alignments": near_shifts,
                      "max_shift_voxels": NEAR_DUPLICATE_MAX_SHIFT, "max_difference": NEAR_DUPLICATE_DIFFERENCE},
            title=f"Possible leakage: {sum(near.values())} volume(s) nearly match one in another split ("
            + ", ".join(f"{pair}: {n}" for pair, n in near.items())
            + f"), up to a shift of {NEAR_DUPLICATE_MAX_SHIFT} voxels and noise of "
            f"{NEAR_DUPLICATE_DIFFERENCE:.0%} of the intensity range",
            suggestion="Look at the example pairs (their alignment is in the evidence): copies with noise or a small "
            "shift should share a group so they stay in one split.",
        ))
    if groups is not None:
        groups = np.asarray(groups)

        def named(code) -> str:
            code = int(code)
            return str(group_names[code]) if group_names is not None and 0 <= code < len(group_names) else str(code)

        members = {name: {named(code) for code in groups[np.asarray(splits[name])].tolist()} for name in names}
        shared = {}
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                both = members[first] & members[second]
                if both:
                    shared[f"{first}-{second}"] = sorted(both)
        if shared:
            found.append(Finding(
                id="groups_across_splits", severity=Severity.PROBLEM,
                evidence={"shared_groups": {pair: values[:20] for pair, values in shared.items()},
                          "shared_counts": {pair: len(values) for pair, values in shared.items()}},
                title="Leakage: groups (patients or sources) appear in more than one split ("
                + ", ".join(f"{pair}: {len(values)} group(s), {name_ranges(values[:20])}"
                            + ("..." if len(values) > 20 else "") for pair, values in shared.items()) + ")",
                suggestion="Split by group (the lab's splits are group-aware when the dataset has groups); samples "
                "of one patient in two splits inflate the validation score.",
            ))
    return found


def volume_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per volume: minimum, maximum, mean intensity and foreground share (voxels above the volume's midrange)."""
    features = {name: np.empty(len(x)) for name in ("min", "max", "mean", "std", "foreground")}
    for start in range(0, len(x), CHUNK):
        block = np.asarray(x[start:start + CHUNK], dtype=np.float32).reshape(min(CHUNK, len(x) - start), -1)
        low, high = block.min(axis=1), block.max(axis=1)
        features["min"][start:start + len(block)] = low
        features["max"][start:start + len(block)] = high
        features["mean"][start:start + len(block)] = block.mean(axis=1)
        features["std"][start:start + len(block)] = block.std(axis=1)
        features["foreground"][start:start + len(block)] = (block > ((low + high) / 2)[:, None]).mean(axis=1)
    return features


def _one_number_accuracy(values: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Accuracy of assigning each sample the class whose median ``values`` is nearest."""
    present = [c for c in range(num_classes) if np.any(labels == c)]
    medians = np.array([np.median(values[labels == c]) for c in present])
    predicted = np.array(present)[np.abs(values[:, None] - medians[None, :]).argmin(axis=1)]
    return float(np.mean(predicted == labels))


def volume_findings(x: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> list[Finding]:
    """Constant or empty volumes, and classes told apart by brightness or foreground size alone."""
    labels = np.asarray(labels, dtype=np.int64)
    features = volume_features(x)
    found: list[Finding] = []
    constant = np.flatnonzero(features["std"] == 0)
    if len(constant):
        empty = int(np.sum((features["max"][constant] == 0) & (features["min"][constant] == 0)))
        found.append(Finding(
            id="constant_volumes", severity=Severity.WARNING,
            evidence={"count": int(len(constant)), "empty": empty, "examples": constant[:10].tolist()},
            title=f"{len(constant)} volume(s) are constant ({empty} of them all zeros)",
            suggestion="They carry no information: check the import (wrong series, failed resampling) and "
            "remove them.",
        ))
    num_classes = len(class_names)
    per_class = {
        str(class_names[c]): {name: [float(np.min(features[name][labels == c])),
                                     float(np.median(features[name][labels == c])),
                                     float(np.max(features[name][labels == c]))]
                              for name in ("mean", "min", "max", "foreground")}
        for c in range(num_classes) if np.any(labels == c)
    }
    majority = float(np.bincount(labels, minlength=num_classes).max() / max(1, len(labels)))
    shortcuts = {}
    for name, words in (("mean", "mean intensity"), ("foreground", "foreground size")):
        accuracy = _one_number_accuracy(features[name], labels, num_classes)
        if accuracy >= SHORTCUT_ACCURACY and accuracy >= majority + SHORTCUT_MARGIN:
            shortcuts[words] = accuracy
    evidence = {"per_class": per_class, "majority_share": majority, "shortcut_accuracy": shortcuts}
    if shortcuts:
        found.append(Finding(
            id="shortcut", severity=Severity.WARNING, evidence=evidence,
            title="The classes differ in " + " and ".join(f"{words} (one number alone is {acc:.0%} accurate)"
                                                          for words, acc in shortcuts.items()),
            suggestion="A model will learn that shortcut first. Check it is real anatomy and not acquisition "
            "(scanner, contrast, cropping); normalise each volume (z-score) and compare.",
        ))
    else:
        found.append(Finding(
            id="intensity_by_class", severity=Severity.NOTE, evidence=evidence,
            title="Intensity and foreground size overlap across classes (no one-number shortcut)",
            suggestion="Per-class ranges are in the evidence.",
        ))
    return found


# ------------------------------------------------------------------ input scale
# Training volumes read to measure the range of what reaches the network.
INPUT_RANGE_SAMPLES = 8
# A first training loss this many times the chance level (ln of the class count) means the scale hurt.
FIRST_LOSS_FACTOR = 3.0


def input_range(x: np.ndarray, indices: np.ndarray, normalization: str) -> tuple[float, float] | None:
    """The value range of a few training volumes after the run's normalisation: what the network is fed."""
    from engine.datasets import normalize

    picks = np.asarray(indices)[np.linspace(0, len(indices) - 1, min(len(indices), INPUT_RANGE_SAMPLES)).astype(int)] \
        if len(indices) else np.asarray([], dtype=int)
    if not len(picks):
        return None
    volumes = normalize(np.stack([np.asarray(x[int(i)], dtype=np.float32) for i in picks]), normalization)
    finite = volumes[np.isfinite(volumes)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def input_scale(value_range: tuple[float, float] | None, first_loss: float | None, num_classes: int,
                normalization: str, learning_rate_problem: bool = False) -> Finding | None:
    """Inputs far from unit scale (e.g. raw Hounsfield units): a problem when the first loss shows it (far
    above chance) or the loss diverged, a warning otherwise. Ranked above the learning-rate finding, since a
    lower rate only hides it."""
    from engine.datasets.preprocess import UNIT_SCALE_LIMIT

    if value_range is None:
        return None
    low, high = value_range
    if max(abs(low), abs(high)) <= UNIT_SCALE_LIMIT:
        return None
    chance = float(np.log(max(num_classes, 2)))
    hurt = first_loss is not None and np.isfinite(first_loss) and first_loss > FIRST_LOSS_FACTOR * chance
    loss_text = "" if first_loss is None else f"; the first training loss was {first_loss:.4g} (chance level {chance:.2f})"
    return Finding(
        id="input_scale",
        severity=Severity.PROBLEM if hurt or learning_rate_problem else Severity.WARNING,
        title=f"Inputs far from unit scale: the network is fed values from {low:.4g} to {high:.4g}"
              f" (normalisation {normalization}){loss_text}",
        suggestion="Scale the inputs before tuning the learning rate: import CT with a window scaled to [0, 1] and "
                   "MR with a per-volume z-score (the import's defaults), or choose Normalisation zscore on Train.",
        evidence={"input_min": low, "input_max": high, "first_loss": first_loss, "chance_loss": chance,
                  "normalization": normalization, "unit_scale_limit": UNIT_SCALE_LIMIT},
    )
