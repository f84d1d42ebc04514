"""Compatibility layers: other courses' APIs over numcnn (numcnn.compat.cs231n)."""
