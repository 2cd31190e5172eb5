//! The ops a blob can hold: their kinds (one bit each in an op set), and the fused
//! activations and element-wise functions they carry.

/// One kind of op in a blob. The discriminant is the wire code and the op set's bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    /// f32 to int8: `q = clamp(round(x / scale) + zero_point)`.
    Quantize = 0,
    /// int8 to f32: `x = scale * (q - zero_point)`.
    Dequantize = 1,
    /// Fully connected layer in f32, with a fused ReLU or ReLU6.
    DenseF32 = 2,
    /// Fully connected layer in int8, per-channel requantization.
    DenseS8 = 3,
    /// 2-D convolution (groups, depthwise) in f32.
    Conv2dF32 = 4,
    /// 2-D convolution (groups, depthwise) in int8.
    Conv2dS8 = 5,
    /// Max pooling in f32.
    MaxPoolF32 = 6,
    /// Max pooling in int8.
    MaxPoolS8 = 7,
    /// Average pooling in f32.
    AvgPoolF32 = 8,
    /// Average pooling in int8.
    AvgPoolS8 = 9,
    /// Global average pooling (mean over height and width) in f32.
    MeanF32 = 10,
    /// Global average pooling in int8.
    MeanS8 = 11,
    /// Element-wise sum of two tensors of one shape (a residual connection) in f32.
    AddF32 = 12,
    /// Element-wise sum in int8 (TensorFlow Lite's ADD arithmetic).
    AddS8 = 13,
    /// An element-wise function in f32 ([`Unary`]).
    UnaryF32 = 14,
    /// An element-wise function in int8, as a 256-entry table.
    LutS8 = 15,
    /// Softmax over the last axis in f32.
    SoftmaxF32 = 16,
    /// Softmax over the last axis in int8 (TensorFlow Lite's fixed-point algorithm).
    SoftmaxS8 = 17,
    /// Decision trees (one, or a forest averaging class probabilities in f64), to the
    /// predicted class's position.
    TreeEnsemble = 18,
    /// Gaussian naive Bayes in f32, to the predicted class's position.
    GaussianNb = 19,
    /// A recurrent layer (RNN, LSTM or GRU) over a sequence in f32. Record words:
    /// `x, y` (u16 each; `[B, T, I]` to `[B, T, W]`, or `[B, W]` for the last step);
    /// cell u8 ([`cell_code`]), flags u8 ([`RECURRENT_REVERSE`],
    /// [`RECURRENT_LAST`]), hidden size u16; first output column u16, 0u16; the
    /// offsets of `W_ih`, `W_hh`, `b_ih`, `b_hh` (biases may be `NONE`); the
    /// scratch's arena offset (see [`dl_core::recurrent`]).
    RecurrentF32 = 20,
}

/// Every op kind, in wire-code order.
pub const KINDS: [OpKind; 21] = [
    OpKind::Quantize,
    OpKind::Dequantize,
    OpKind::DenseF32,
    OpKind::DenseS8,
    OpKind::Conv2dF32,
    OpKind::Conv2dS8,
    OpKind::MaxPoolF32,
    OpKind::MaxPoolS8,
    OpKind::AvgPoolF32,
    OpKind::AvgPoolS8,
    OpKind::MeanF32,
    OpKind::MeanS8,
    OpKind::AddF32,
    OpKind::AddS8,
    OpKind::UnaryF32,
    OpKind::LutS8,
    OpKind::SoftmaxF32,
    OpKind::SoftmaxS8,
    OpKind::TreeEnsemble,
    OpKind::GaussianNb,
    OpKind::RecurrentF32,
];

/// The op set with every kind: the default of [`crate::Model`].
pub const ALL: u32 = (1 << KINDS.len()) - 1;

impl OpKind {
    /// This kind's bit in an op set.
    pub const fn bit(self) -> u32 {
        1 << self as u8
    }

    /// The kind of a wire code, if it is one.
    pub fn from_code(code: u8) -> Option<Self> {
        KINDS.get(code as usize).copied()
    }

    /// The op's name, as errors and reports show it.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Quantize => "Quantize",
            OpKind::Dequantize => "Dequantize",
            OpKind::DenseF32 => "Dense(f32)",
            OpKind::DenseS8 => "Dense(int8)",
            OpKind::Conv2dF32 => "Conv2d(f32)",
            OpKind::Conv2dS8 => "Conv2d(int8)",
            OpKind::MaxPoolF32 => "MaxPool2d(f32)",
            OpKind::MaxPoolS8 => "MaxPool2d(int8)",
            OpKind::AvgPoolF32 => "AvgPool2d(f32)",
            OpKind::AvgPoolS8 => "AvgPool2d(int8)",
            OpKind::MeanF32 => "GlobalAvgPool(f32)",
            OpKind::MeanS8 => "GlobalAvgPool(int8)",
            OpKind::AddF32 => "Add(f32)",
            OpKind::AddS8 => "Add(int8)",
            OpKind::UnaryF32 => "Activation(f32)",
            OpKind::LutS8 => "Activation(int8 table)",
            OpKind::SoftmaxF32 => "Softmax(f32)",
            OpKind::SoftmaxS8 => "Softmax(int8)",
            OpKind::TreeEnsemble => "TreeEnsemble",
            OpKind::GaussianNb => "GaussianNB",
            OpKind::RecurrentF32 => "Recurrent(f32)",
        }
    }
}

/// The op set (a bit per [`OpKind`]) of a list of kinds, for [`crate::Model`]'s
/// `OPS` parameter: `Model::<{ op_set(&[OpKind::Quantize, OpKind::DenseS8]) }>`.
pub const fn op_set(kinds: &[OpKind]) -> u32 {
    let mut bits = 0;
    let mut i = 0;
    while i < kinds.len() {
        bits |= kinds[i].bit();
        i += 1;
    }
    bits
}

/// The activation fused into a dense or convolution layer (applied to its output
/// before it is stored; in int8 it is the clamp of the requantized value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// No activation.
    None,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
}

impl Act {
    /// The wire code.
    pub const fn code(self) -> u8 {
        match self {
            Act::None => 0,
            Act::Relu => 1,
            Act::Relu6 => 2,
        }
    }

    /// The activation of a wire code, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Act::None),
            1 => Some(Act::Relu),
            2 => Some(Act::Relu6),
            _ => None,
        }
    }

    /// Applies the activation to one f32.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Relu6 => x.clamp(0.0, 6.0),
        }
    }

    /// The real-valued interval the activation's output lies in.
    pub const fn range(self) -> (f32, f32) {
        match self {
            Act::None => (f32::NEG_INFINITY, f32::INFINITY),
            Act::Relu => (0.0, f32::INFINITY),
            Act::Relu6 => (0.0, 6.0),
        }
    }
}

/// An element-wise function of a standalone activation op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
    /// `x` if `x > 0`, else `slope * x`.
    LeakyRelu(f32),
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
}

impl Unary {
    /// The wire code (the slope of a leaky ReLU travels in its own word).
    pub const fn code(self) -> u8 {
        match self {
            Unary::Relu => 0,
            Unary::Relu6 => 1,
            Unary::LeakyRelu(_) => 2,
            Unary::Sigmoid => 3,
            Unary::Tanh => 4,
        }
    }

    /// The function of a wire code and slope word, if the code is one.
    pub fn from_code(code: u8, slope: f32) -> Option<Self> {
        Some(match code {
            0 => Unary::Relu,
            1 => Unary::Relu6,
            2 => Unary::LeakyRelu(slope),
            3 => Unary::Sigmoid,
            4 => Unary::Tanh,
            _ => return None,
        })
    }

    /// The function at one point, in f64 (what int8 tables are built from).
    pub fn apply_f64(self, x: f64) -> f64 {
        match self {
            Unary::Relu => x.max(0.0),
            Unary::Relu6 => x.clamp(0.0, 6.0),
            Unary::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s as f64 * x
                }
            }
            Unary::Sigmoid => 1.0 / (1.0 + libm::exp(-x)),
            Unary::Tanh => libm::tanh(x),
        }
    }
}

/// The cell of a recurrent op ([`OpKind::RecurrentF32`]).
pub use dl_core::recurrent::Cell;

/// Flag of a recurrent op record: steps run from the last to the first.
pub const RECURRENT_REVERSE: u8 = 1;
/// Flag of a recurrent op record: only the state after the last step is written.
pub const RECURRENT_LAST: u8 = 2;

/// The wire code of a recurrent cell: 0 RNN with tanh, 1 RNN with ReLU, 2 LSTM, 3 GRU.
pub const fn cell_code(cell: Cell) -> u8 {
    match cell {
        Cell::RnnTanh => 0,
        Cell::RnnRelu => 1,
        Cell::Lstm => 2,
        Cell::Gru => 3,
    }
}

/// The recurrent cell of a wire code, if it is one.
pub const fn cell_from_code(code: u8) -> Option<Cell> {
    match code {
        0 => Some(Cell::RnnTanh),
        1 => Some(Cell::RnnRelu),
        2 => Some(Cell::Lstm),
        3 => Some(Cell::Gru),
        _ => None,
    }
}
