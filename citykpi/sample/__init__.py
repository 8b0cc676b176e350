"""The sample city: areas, a deterministic generator of a year of observations and hotline cases."""

from citykpi.sample.areas import build_areas, write_areas
from citykpi.sample.generate import GenerationResult, OutputFile, generate
from citykpi.sample.load import SampleLoad, load_sample, read_manifest

__all__ = [
    "GenerationResult",
    "OutputFile",
    "SampleLoad",
    "build_areas",
    "generate",
    "load_sample",
    "read_manifest",
    "write_areas",
]
