"""fabrec: 3FabRec few-shot face alignment (Browatzki & Wallraven, CVPR 2020)."""

from fabrec.config import ModelConfig
from fabrec.errors import FabrecError
from fabrec.model import FabRec, FabRecOutput
from fabrec.predict import FaceResult, LandmarkPredictor

__version__ = "0.1.0"
__all__ = [
    "FabRec", "FabRecOutput", "FabrecError", "FaceResult", "LandmarkPredictor", "ModelConfig", "__version__",
]
