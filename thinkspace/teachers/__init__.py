"""Geometry teachers: target 3D features for the latent-alignment objective."""

from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures
from thinkspace.teachers.noisy import NoisyGeometryTeacher
from thinkspace.teachers.oracle import OracleGeometryTeacher
from thinkspace.teachers.vggt import VGGTTeacher

__all__ = ["GeometryTeacher", "TeacherFeatures", "OracleGeometryTeacher", "VGGTTeacher", "NoisyGeometryTeacher"]
