"""The parts of an image project (:class:`labeltune.core.project.Project`), one responsibility each.

Import :class:`~labeltune.core.project.Project` from core/project.py; these modules are its mixins.
"""
