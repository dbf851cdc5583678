"""The software module's state-key prefixes, declared once."""

REPOSITORY = "sw/repo/"  # (maker, "image" | "director") -> its anchored root and latest release
RELEASE = "sw/release/"  # (maker, targets version) -> an anchored release of the image repository
IMAGE = "sw/image/"  # (maker, sha256) -> an image some anchored release lists
BUNDLE = "sw/bundle/"  # (maker, bundle) -> the images (by hardware id) that are installed together
VEHICLE = "sw/veh/"  # VIN -> its ECUs and the image each runs
