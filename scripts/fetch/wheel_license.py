"""Copies the licence file of a wheel's metadata (`*.dist-info/LICENSE*`) to a path.

Usage: python3 wheel_license.py WHEEL OUT_FILE
"""

import sys
import zipfile

if len(sys.argv) != 3:
    sys.exit(__doc__)
with zipfile.ZipFile(sys.argv[1]) as z:
    lic = [n for n in z.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[-1].startswith("LICENSE")]
    if not lic:
        sys.exit(f"{sys.argv[1]}: no licence file in the wheel metadata")
    with open(sys.argv[2], "wb") as f:
        f.write(z.read(lic[0]))
