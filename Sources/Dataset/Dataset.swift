// NIfTI, the ACDC loader and the synthetic phantom.
import Reference
