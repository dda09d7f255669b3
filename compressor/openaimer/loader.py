"""OpenAImer Track-2 `model_loader.py`: rebuild a compressed classifier from model.pt + metadata.json.

This file is copied verbatim into every exported submission, so it imports only torch, torchvision and numpy
(never `compressor`) and downloads nothing. The returned model takes the protocol's input (N x 3 x 224 x 224,
ImageNet-normalized RGB) and converts it to what the network was trained on: channels, size and normalization.
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

LAYERS = {name: getattr(nn, name) for name in ("Conv2d", "Linear", "BatchNorm2d", "Identity", "ReLU", "Flatten",
                                                "Dropout", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _module(spec):
    if spec["type"] == "Sequential":
        container = nn.Sequential()
        for name, child in spec.get("children", []):
            container.add_module(name, _module(child))
        return container
    return LAYERS[spec["type"]](**spec.get("args", {}))


def _set(model, path, module):
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def _base(meta):
    kwargs = {"weights": None}
    if meta["arch"] == "inception_v3":
        kwargs.update(aux_logits=False, transform_input=False, init_weights=False)
    model = getattr(torchvision.models, meta["arch"])(**kwargs)
    stem = model.get_submodule(meta["stem_conv"])
    if stem.in_channels != meta["in_channels"]:
        _set(model, meta["stem_conv"], nn.Conv2d(meta["in_channels"], stem.out_channels, stem.kernel_size,
                                                 stem.stride, stem.padding, stem.dilation, stem.groups,
                                                 stem.bias is not None))
    head = model.get_submodule(meta["classifier"])
    _set(model, meta["classifier"], nn.Linear(head.in_features, meta["num_classes"]))
    for edit in meta["edits"]:
        if edit["op"] == "delete":
            parent, _, name = edit["path"].rpartition(".")
            delattr(model.get_submodule(parent) if parent else model, name)
        else:
            _set(model, edit["path"], _module(edit["module"]))
    return model


def _tensor(entry):
    if "dense" in entry:
        tensor = entry["dense"]
        return tensor.float() if tensor.is_floating_point() else tensor
    values = entry["values"]
    count = int(np.prod(entry["shape"])) if entry["shape"] else 1
    keep = np.unpackbits(entry["mask"].numpy(), count=count, bitorder="little").astype(bool)
    flat = torch.zeros(count, dtype=values.dtype)
    flat[torch.from_numpy(keep)] = values
    return flat.view(entry["shape"]).float()


class ProtocolInput(nn.Module):
    """ImageNet-normalized RGB at any size -> the network's channels, input size and normalization."""

    def __init__(self, network, in_channels, input_size, mean, std):
        super().__init__()
        self.network = network
        self.in_channels = in_channels
        self.input_size = input_size
        self.register_buffer("imagenet_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("imagenet_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

    def forward(self, x):
        x = x * self.imagenet_std + self.imagenet_mean
        if self.in_channels == 1:
            x = (x * self.luma).sum(dim=1, keepdim=True)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return self.network((x - self.mean) / self.std)


def load_model(path):
    """The submission's model, in eval mode, taking 3 x 224 x 224 ImageNet-normalized input."""
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), "metadata.json")) as handle:
        meta = json.load(handle)["compressor"]
    network = _base(meta)
    stored = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict({name: _tensor(entry) for name, entry in stored.items()})
    return ProtocolInput(network, meta["in_channels"], meta["input_size"], meta["mean"], meta["std"]).eval()
