"""Hook specifications: how a plugin adds weighters, methods, datasets and trainers.

Every hook receives a ``register`` callback (the simonw/llm pattern), so the host names,
checks and lists what plugins provide. A plugin implements any subset of these hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("dd_plugins")


@hookspec
def dd_register_weighters(register):
    """Register sample weighters.

    Call ``register(name, factory, *, description=None)`` once per weighter. ``factory(**params)``
    returns an object with ``requires: frozenset[str]`` and ``weigh(ctx: WeightContext) -> Tensor``
    giving one raw weight >= 0 per training sample. ``description`` defaults to the first line of
    the factory's docstring.
    """


@hookspec
def dd_register_methods(register):
    """Register distillation methods.

    Call ``register(name, factory, *, description=None)``. ``factory(**params)`` (accepting at
    least ``ipc`` and ``iterations``) returns a distiller whose
    ``distill(data, weights, *, device, seed, progress, checkpoint_dir)`` returns a
    ``SyntheticSet``.
    """


@hookspec
def dd_register_datasets(register):
    """Register biased datasets.

    Call ``register(name, builder, *, description=None)``. ``builder(*, seed, **params)`` returns
    a ``BiasedDataset`` holding a train and a test ``BiasedSplit`` with bias labels.
    """


@hookspec
def dd_register_trainers(register):
    """Register evaluation trainers (how a net is trained on a distilled set).

    Call ``register(name, factory, *, description=None)``. ``factory(**params)`` returns a
    trainer whose ``fit(make_net, images, labels, *, schedule, augment, device, generator,
    progress)`` returns a trained ``torch.nn.Module`` mapping images to logits.
    """
