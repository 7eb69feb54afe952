"""Makes this folder a package so a plain wheel ships fairalign_toxicity.py and its README.md model card
(setup.py's package_data applies to packages); evaluate itself loads the script by path, not from here."""
