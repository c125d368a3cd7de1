"""Suite-wide settings.

Triton kernels run on CPU tensors only in Triton's interpreter; the variable
must be set before triton is first imported, whichever test module does that.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
