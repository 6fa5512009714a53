"""The exercises' stubs, one file each: ``python -m tinygan.exercises start NAME`` copies one to ./exercises/."""
