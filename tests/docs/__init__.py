"""Tests that run the commands quoted in the documentation."""
