"""Parameter counts of ResNet-20 (1x1 projection shortcuts) and ResNet-18, in PyTorch.
Run: python3 dl-layers/tests/make_reference.py"""
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def resnet20(classes=10):
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
    cin = 16
    for i, w in enumerate([16, 32, 64]):
        for b in range(3):
            layers.append(Block(cin, w, 2 if i > 0 and b == 0 else 1))
            cin = w
    layers.append(nn.Linear(64, classes))
    return nn.Sequential(*layers)


def count(m):
    return sum(p.numel() for p in m.parameters())


if __name__ == "__main__":
    print("resnet20", count(resnet20()))
    try:
        import torchvision
        print("resnet18", count(torchvision.models.resnet18()))
    except ImportError:
        print("resnet18 11689512 (torchvision's published count)")
