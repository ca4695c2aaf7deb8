// TLFormats: see the README for what this module holds.
import TLTensor
