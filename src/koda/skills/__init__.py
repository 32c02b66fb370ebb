"""Skills: SKILL.md instructions the model can load for a kind of task."""

from koda.skills.discovery import PROJECT_DIRS, SkillScan, discover_skills
from koda.skills.skill import Skill

__all__ = ["PROJECT_DIRS", "Skill", "SkillScan", "discover_skills"]
