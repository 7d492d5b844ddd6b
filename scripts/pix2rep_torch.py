"""The official Pix2Rep U-Net as a PyTorch nn.Module (docs/PROTOCOL.md section 2), with the official
state-dict keys (inc, down1.., up1..), shared by the hand-run scripts that need it
(check_safetensors.py loads our exported weights into it; bench_pytorch.py times it)."""


def official_unet(torch, channels, widths, features):
    """DoubleConv = [3x3 conv without bias, BatchNorm, ReLU] x 2; Down = 2x2 max-pool then DoubleConv;
    Up = 2x2 transposed conv (stride 2), concatenate [skip, upsampled], DoubleConv; the last Up
    outputs `features` channels."""
    nn = torch.nn

    class DoubleConv(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.double_conv = nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        def forward(self, x):
            return self.double_conv(x)

    class Down(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

        def forward(self, x):
            return self.maxpool_conv(x)

    class Up(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(cin, cout)

        def forward(self, x, skip):
            return self.conv(torch.cat([skip, self.up(x)], dim=1))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.depth = len(widths) - 1
            self.inc = DoubleConv(channels, widths[0])
            for k in range(1, self.depth + 1):
                setattr(self, f"down{k}", Down(widths[k - 1], widths[k]))
            for k in range(1, self.depth + 1):
                cin = widths[self.depth - k + 1]
                setattr(self, f"up{k}", Up(cin, features if k == self.depth else widths[self.depth - k]))

        def forward(self, x):
            skips = [self.inc(x)]
            for k in range(1, self.depth + 1):
                skips.append(getattr(self, f"down{k}")(skips[-1]))
            y = skips.pop()
            for k in range(1, self.depth + 1):
                y = getattr(self, f"up{k}")(y, skips.pop())
            return y

    return UNet()
