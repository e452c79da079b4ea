"""Built-in T1w tissue segmentation (GM/WM/CSF probability maps), offline from pip packages.

N4 bias correction and registration of nilearn's bundled MNI152 template (antspyx), then a
Bayesian partial-volume model with the template's tissue priors (NumPy; Atropos optional).
Heavy libraries are imported only when segmenting.
"""
from .files import segment_t1w_file
from .pipeline import METHOD, segment_t1w
from .result import Segmentation

__all__ = ["Segmentation", "segment_t1w", "segment_t1w_file", "METHOD"]
