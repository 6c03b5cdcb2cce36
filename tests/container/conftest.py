"""Fixtures of the container suite (defined in containerkit.py; see its docstring for
scopes and why each exists)."""

from containerkit import base_image, image, s3

__all__ = ["base_image", "image", "s3"]
