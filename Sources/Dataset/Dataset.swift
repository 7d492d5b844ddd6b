// The Dataset module: everything between files on disk and the slices the training code uses.
//
// - Gzip.swift, NIfTI*.swift: NIfTI-1/-2 reading (.nii, .nii.gz, both byte orders) and NIfTI-1
//   writing, through the system zlib.
// - ACDC*.swift, Preprocessing.swift, Splits.swift: the ACDC layout, Info.cfg, the official
//   preprocessing (PROTOCOL section 1, with our stated deviations), and the seeded splits.
// - Phantom*.swift: the synthetic ACDC-like dataset of PHANTOM.md, written in the ACDC layout.
// - PNG.swift: a tiny PNG encoder for looking at slices.
//
// Every failure on bad input is a `DataError`: one line naming the file and the problem.
