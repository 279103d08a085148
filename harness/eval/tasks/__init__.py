"""lmms-eval tasks the harness ships where lmms-eval has none (OCRVQA), registered through the
include path: ``lmms-eval --include_path <this folder> --tasks ocrvqa`` works outside the harness too."""
