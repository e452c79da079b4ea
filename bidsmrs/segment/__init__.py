"""Built-in T1w tissue segmentation (GM/WM/CSF probability maps), offline from pip packages.

N4 bias correction, registration of nilearn's bundled MNI152 template and Atropos with the
template's tissue priors (antspyx). Heavy libraries are imported only when segmenting.
"""
from .files import segment_t1w_file
from .pipeline import METHOD, segment_t1w
from .result import Segmentation

__all__ = ["Segmentation", "segment_t1w", "segment_t1w_file", "METHOD"]
