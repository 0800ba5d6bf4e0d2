"""Profiles are data: TOML files naming a protocol, its endpoints, channels and vocabulary."""

from .model import CommandSpec, HeartbeatSpec, Profile
from .loader import ProfileError, available_profiles, load_profile, load_profile_file

__all__ = [
    "CommandSpec",
    "HeartbeatSpec",
    "Profile",
    "ProfileError",
    "available_profiles",
    "load_profile",
    "load_profile_file",
]
