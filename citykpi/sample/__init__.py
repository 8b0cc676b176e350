"""The sample city: areas, a deterministic generator of a year of observations and hotline cases."""

from citykpi.sample.areas import build_areas, write_areas
from citykpi.sample.generate import GenerationResult, OutputFile, generate

__all__ = ["GenerationResult", "OutputFile", "build_areas", "generate", "write_areas"]
