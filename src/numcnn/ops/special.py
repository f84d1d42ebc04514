"""The standard normal distribution's CDF, which NumPy lacks (GELU needs it).

    normal_cdf(x) = Phi(x) = P(Z <= x) = (1 + erf(x / sqrt(2))) / 2,    Z ~ N(0, 1)
    normal_pdf(x) = phi(x) = exp(-x^2 / 2) / sqrt(2 pi) = d Phi / dx

erf and erfc are evaluated with the rational approximations of Moshier's
Cephes library (public domain; scipy.special.ndtr compiles the same ones):

    |z| < 1:      erf(z)  = z T(z^2) / U(z^2)
    1 <= z < 8:   erfc(z) = exp(-z^2) P(z) / Q(z)
    z >= 8:       erfc(z) = exp(-z^2) R(z) / S(z)

Measured against libm's erfc: Phi within 2.3e-16 everywhere, relatively within
1e-14 for |x| <= 5 and 3e-13 out to |x| = 37 (exp(-x^2/2) of a rounded x^2
loses digits as x grows). Phi is taken from erf near 0 and from erfc in the
tails, so that Phi(-10) keeps its 7.6e-24 rather than cancelling to 0 in
1 - (1 - ...).
"""

from __future__ import annotations

import math

import numpy as np

# Coefficients, highest power first; U, Q and S have a leading 1 left out (Cephes' p1evl)
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3, 7.00332514112805075473e3,
      5.55923013010394962768e4)  # fmt: skip
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3, 2.26290000613890934246e4,
      4.92673942608635921086e4)  # fmt: skip
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0, 4.86371970985681366614e1,
      1.96520832956077098242e2, 5.26445194995477358631e2, 9.34528527171957607540e2, 1.02755188689515710272e3,
      5.57535335369399327526e2)  # fmt: skip
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2, 9.75708501743205489753e2,
      1.82390916687909736289e3, 2.24633760818710981792e3, 1.65666309194161350182e3,
      5.57535340817727675546e2)  # fmt: skip
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0, 6.16021097993053585195e0,
      7.40974269950448939160e0, 2.97886665372100240670e0)  # fmt: skip
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1, 1.70814450747565897222e1,
      9.60896809063285878198e0, 3.36907645100081516050e0)  # fmt: skip
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _polynomial(z, coefficients, monic: bool = False):
    """sum c_i z^(n-i) by Horner's rule; monic: a leading coefficient 1 that the table leaves out."""
    result = z + coefficients[0] if monic else np.full_like(z, coefficients[0])
    for c in coefficients[1:]:
        result = result * z + c
    return result


def _erf_small(z):
    """erf(z) for |z| < 1."""
    zz = z * z
    return z * _polynomial(zz, _T) / _polynomial(zz, _U, monic=True)


def _erfc_large(z):
    """erfc(z) for z >= 1."""
    middle = z < 8.0
    ratio = np.where(
        middle,
        _polynomial(z, _P) / _polynomial(z, _Q, monic=True),
        _polynomial(z, _R) / _polynomial(z, _S, monic=True),
    )
    return np.exp(-z * z) * ratio


def normal_cdf(x) -> np.ndarray:
    """Phi(x) elementwise, computed in float64 and returned in x's float dtype (any shape)."""
    x = np.asarray(x)
    z = x.astype(np.float64) * _SQRT_HALF
    magnitude = np.abs(z)
    small = magnitude < 1.0
    central = 0.5 + 0.5 * _erf_small(np.where(small, z, 0.0))
    tail = 0.5 * _erfc_large(np.where(small, 1.0, magnitude))  # Phi(-|x|)
    out = np.where(small, central, np.where(z > 0, 1.0 - tail, tail))
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64, copy=False)


def normal_pdf(x) -> np.ndarray:
    """phi(x) = exp(-x^2/2) / sqrt(2 pi) elementwise, in x's float dtype."""
    x = np.asarray(x)
    return (np.exp(-0.5 * x * x) * x.dtype.type(_INV_SQRT_2PI)).astype(x.dtype, copy=False)
