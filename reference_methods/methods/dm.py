"""Distribution Matching (Zhao & Bilen, WACV 2023), with sample weights through the adapters.

Each iteration draws a fresh randomly initialised ConvNet, embeds a real batch of every class and
the synthetic set, and moves the synthetic images so that each class's mean embedding matches the
(weighted) mean embedding of its real batch. Published defaults (VICO-UoE/DatasetCondensation,
``main_DM.py``): 20 000 iterations, SGD on the images with lr 1.0 and momentum 0.5, 256 real
images per class, real init, DSA ``color_crop_cutout_flip_scale_rotate``.

Two choices differ from the VICO loop, both documented in docs/methods.md:

* All classes' real batches go through the net in ONE forward pass without autograd and the
  synthetic set in one more. Instance norm normalises each image on its own, so this is exactly
  the per-class loop (``class_embedding_loss_per_class`` is that loop, for tests and benchmarks).
* One DSA parameter set per iteration, shared by every class and by the real and synthetic
  batch. VICO seeds each class from the millisecond clock (so neighbouring classes often share
  one anyway); a single set lets the whole batch be augmented in one call.

Under torchrun each rank matches a block of classes (``reference_methods.distributed``): every
rank draws the same nets, DSA parameters and real batches, embeds only its classes, and the
ranks exchange their synthetic rows at each checkpoint and at the end. The loss is a sum over
classes, so this equals the one-process run (up to float rounding; batch norm would mix classes
and is refused).

Weights enter through ``ClassSampler`` (which real images) and ``weighted_class_means`` (how
they are averaged). The synthetic images start from a uniformly drawn real subset, as in VICO,
whatever the weights (``init="real"``; ``initial_images`` says why not a weighted draw with
replacement); ``init="weighted"`` draws the start ∝ weight without replacement instead.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from adapters.dm import weighted_class_means
from adapters.sampling import MODES as SAMPLING_MODES
from adapters.sampling import ClassSampler
from dd_plugins.progress import progress_bar
from reference_methods import distributed
from reference_methods.augment import DSAugment
from reference_methods.datasets.base import BiasedDataset
from reference_methods.methods.base import SyntheticSet
from reference_methods.methods.loop import (Checkpoint, check_distiller_args, class_real_images, initial_images,
                                            net_kwargs, seeded_net, synthetic_labels, weights_digest)
from reference_methods.seeds import derive_seed, generator


def class_embedding_loss(net: nn.Module, real: Tensor, coefficients: Tensor, syn: Tensor) -> Tensor:
    """DM loss: sum over classes of the squared distance between real (weighted) and synthetic mean embeddings.

    ``real`` [K * n, ...] and ``syn`` [K * ipc, ...] are in class blocks; ``coefficients`` [K, n].
    Real images are embedded in one pass without autograd, the synthetic set in one more.
    """
    num_classes, n = coefficients.shape
    with torch.no_grad():
        real_embeddings = net.embed(real).view(num_classes, n, -1)
    syn_embeddings = net.embed(syn).view(num_classes, syn.shape[0] // num_classes, -1)
    return ((weighted_class_means(real_embeddings, coefficients) - syn_embeddings.mean(dim=1)) ** 2).sum()


def class_embedding_loss_per_class(net: nn.Module, real: Tensor, coefficients: Tensor, syn: Tensor) -> Tensor:
    """The same loss with VICO's loop of two forward passes per class (reference for tests and the benchmark)."""
    num_classes, n = coefficients.shape
    ipc = syn.shape[0] // num_classes
    loss = syn.new_zeros(())
    for c in range(num_classes):
        with torch.no_grad():
            real_embeddings = net.embed(real[c * n:(c + 1) * n])
        syn_mean = net.embed(syn[c * ipc:(c + 1) * ipc]).mean(dim=0)
        loss = loss + ((weighted_class_means(real_embeddings[None], coefficients[c:c + 1])[0] - syn_mean) ** 2).sum()
    return loss


class DM:
    """Distribution Matching: match per-class mean embeddings of random ConvNets (Zhao & Bilen 2023)."""

    def __init__(self, ipc: int = 10, iterations: int = 20000, lr_img: float = 1.0, momentum: float = 0.5,
                 batch_real: int = 256, init: str = "real", sampling: str = "resample", net: str = "convnet",
                 net_width: int = 128, net_depth: int = 3, net_norm: str = "instancenorm", dsa: bool = True,
                 checkpoint_every: int = 500) -> None:
        self.ipc = ipc
        self.iterations = iterations
        self.lr_img = lr_img
        self.momentum = momentum
        self.batch_real = batch_real
        self.init = init
        self.sampling = sampling
        self.net = net
        self.net_width = net_width
        self.net_depth = net_depth
        self.net_norm = net_norm
        self.dsa = dsa
        self.checkpoint_every = checkpoint_every
        check_distiller_args("dm", self, ("ipc", "batch_real", "checkpoint_every"), SAMPLING_MODES)

    def distill(self, data: BiasedDataset, weights: Tensor, *, device: torch.device, seed: int,
                progress: bool = False, checkpoint_dir: Path | None = None) -> SyntheticSet:
        device = torch.device(device)
        classes = distributed.class_range(data.num_classes)  # this rank's classes: all of them in one process
        if len(classes) < data.num_classes and self.net_norm == "batchnorm":
            raise ValueError("dm: batch norm mixes the classes of one forward pass, so they cannot be split across "
                             "processes; use net_norm='instancenorm' or run in one process")
        own_rows = slice(classes.start * self.ipc, classes.stop * self.ipc)
        sampler = ClassSampler(data.train.labels, weights, data.num_classes, mode=self.sampling,
                               generator=generator(derive_seed(seed, "dm/sampler")))
        n_real = min(self.batch_real, sampler.max_batch)  # a tiny class caps the real batch (uniform draws never repeat)
        loop_generator = generator(derive_seed(seed, "dm/loop"))  # fresh nets and DSA parameters
        augment = DSAugment(flip=data.flip) if self.dsa else None
        kwargs = net_kwargs(self.net, self.net_width, self.net_depth, self.net_norm)

        init_generator = generator(derive_seed(seed, "dm/init"))
        syn = initial_images(data, self.ipc, self.init, init_generator, device, weights).requires_grad_(True)
        optimizer = torch.optim.SGD([syn], lr=self.lr_img, momentum=self.momentum)

        identity = {"method": "dm", "seed": seed, "dataset": data.name, "num_train": len(data.train),
                    "weights": weights_digest(weights),
                    **{k: v for k, v in vars(self).items() if k not in ("iterations", "checkpoint_every")}}
        checkpoint = Checkpoint(checkpoint_dir, "dm", identity)
        tensors = {"images": syn}
        states = {"optimizer": optimizer, "sampler": sampler, "loop_generator": loop_generator}
        start, state = checkpoint.resume(self.iterations, tensors, states)
        loss = torch.tensor(state["loss"]) if state is not None else torch.zeros(())

        real_images, position = class_real_images(data, classes, device)
        bar = progress_bar(range(start, self.iterations), desc="dm", initial=start, total=self.iterations,
                   disable=not progress)
        for it in bar:
            net = seeded_net(self.net, data, loop_generator, device, **kwargs).train().requires_grad_(False)
            indices, coefficients = sampler.sample_all(n_real)  # every class, so all ranks' samplers stay in step
            indices, coefficients = indices[classes.start:classes.stop], coefficients[classes.start:classes.stop]
            real = real_images[position[indices.reshape(-1)].to(device)]
            images = syn[own_rows]
            if augment is not None:
                params = augment.sample_params(loop_generator)
                real, images = augment.apply(real, params), augment.apply(images, params)
            loss = class_embedding_loss(net, real, coefficients.to(device), images)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            done = it + 1
            if done % self.checkpoint_every == 0 or done == self.iterations:
                distributed.exchange_class_blocks(syn, data.num_classes)
                distributed.exchange_optimizer_state(optimizer, syn, data.num_classes)
                loss = distributed.all_reduce_sum(loss.detach())
                checkpoint.save_progress(done, tensors, states, loss=loss.item())
            if progress and done % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)

        return SyntheticSet(
            images=syn.detach().cpu(),
            labels=synthetic_labels(data.num_classes, self.ipc, torch.device("cpu")),
            extras={"batch_real": n_real, "final_loss": float(loss.detach())},
        )
