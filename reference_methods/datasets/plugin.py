"""Default plugin: registers the bundled biased datasets."""

from dd_plugins.manager import hookimpl
from reference_methods.datasets.bffhq import build_bffhq
from reference_methods.datasets.cdigits import build_cdigits
from reference_methods.datasets.cifar10c import build_cifar10c
from reference_methods.datasets.fairdd import build_cfmnist_bg, build_cfmnist_fg, build_cifar10s, build_cmnist_bg, build_cmnist_fg
from reference_methods.datasets.fmnist_c import build_fmnist_c
from reference_methods.datasets.lff import build_bg_fmnist, build_cmnist


@hookimpl
def dd_register_datasets(register):
    """The LfF benchmarks, their Fashion-MNIST corruption stand-in, the FairDD benchmarks, bFFHQ and ``cdigits``."""
    register("cmnist", build_cmnist)
    register("bg_fmnist", build_bg_fmnist)
    register("cifar10c", build_cifar10c)
    register("fmnist_c", build_fmnist_c)
    register("cmnist_fg", build_cmnist_fg)
    register("cmnist_bg", build_cmnist_bg)
    register("cfmnist_fg", build_cfmnist_fg)
    register("cfmnist_bg", build_cfmnist_bg)
    register("cifar10s", build_cifar10s)
    register("bffhq", build_bffhq)
    register("cdigits", build_cdigits)
