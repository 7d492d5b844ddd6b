// The Dataset module: everything between files on disk and the slices the training code uses.
//
// - Gzip.swift, NIfTI*.swift: NIfTI-1/-2 reading (.nii, .nii.gz, both byte orders) and NIfTI-1
//   writing, through the system zlib. `NIfTIVolume.read(from:)`, `volume.write(to:)`.
// - ACDCInfo.swift, ACDCDataset.swift, Preprocessing.swift, Percentile.swift, Splits.swift: the
//   ACDC layout, Info.cfg, the preprocessing of docs/PROTOCOL.md section 1 (with our stated
//   deviations), and the seeded splits. `ACDCDataset.load(root:preprocessing:)`,
//   `dataset.pretrainingSplit(seed:)`, `dataset.testVolumes`,
//   `dataset.drawLabelledPatients(count:seed:)`, `dataset.labelledSplit(_:)`.
// - Phantom*.swift: the synthetic ACDC-like dataset of docs/PHANTOM.md, written in the ACDC layout.
//   `PhantomGenerator(seed:difficulty:gridSize:patients:).write(to:progress:)`,
//   `ensurePhantom(cacheDirectory:seed:difficulty:gridSize:progress:)`.
// - PNG.swift, PhantomPreview.swift: a tiny PNG encoder and label overlays, for looking at slices.
//
// Every failure on bad input is a `DataError`: one line naming the file and the problem.
