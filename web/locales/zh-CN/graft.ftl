## Graft 页面的简体中文文本。这里的每条消息在 ../en/graft.ftl 中都有对应的一条
## (缺少任何一条，测试都会失败)。

page-title = Graft：在浏览器里做迁移学习
tagline = 在浏览器里做迁移学习。数据不会离开这台电脑。
language-label = 语言

## Model status and backend
backend-label = 计算设备
backend-auto = 自动（有硬件 GPU 就用 GPU，否则用 CPU）
backend-cpu = CPU（WebAssembly）
backend-webgpu = WebGPU（任何适配器）
backend-starting = 正在启动…
backend-title = 模型在哪里计算
model-loading = 正在加载模型…
model-ready-in = { $seconds } 秒内就绪
model-none = 没有模型

## Project bar
project-label = 项目
project-option = { $name }（{ $samples } 张图片）
project-name = 名称
project-new = 新建
project-delete = 删除
project-delete-confirm = 删除项目“{ $name }”及其全部图片和模型？此操作无法撤销。
project-export = 导出项目
project-import = 导入项目
model-export = 导出模型
model-export-title = 训练好的模型，保存为一个 .safetensors 文件（可用 graft predict --model 运行）
storage-used = 已保存在此浏览器中：{ $used }，共 { $quota }
storage-saved = 已保存在此浏览器中
storage-opening = 正在打开上一个项目…

## Embedding pool
pool-summary = 用 { $workers } 个 Worker 并行提取特征（{ $cores } 个核心{ $details }）
pool-memory = ，{ $megabytes } MB
pool-loading = ，{ $loading } 个正在加载模型
pool-title = 新样本由这么多个 Web Worker 解码并提取特征，每个都有一份自己的模型
pool-workers = Worker 数
pool-auto = 每个核心一个

## Training
train-heading = 训练
setting-epochs = 轮数（epoch）
setting-batch = 批大小
setting-lr = 学习率
setting-hidden = 隐藏单元（0 = 线性）
setting-val-fraction = 验证集比例
setting-seed = 随机种子
setting-adapt-weight = 强度
adapt-label = 适应新领域
adapt-explain = 领域自适应（DANN）训练特征，让第二个分类器无法区分你标注的图片和新领域的 { $target } 张未标注图片，同时仍然学习标签：这样模型学到的东西也适用于它将被使用的地方。
adapt-hint = 解冻了骨干网络的块时，适应要温和：在我们的测量中，强度 1 时反向梯度把这些块从标签上拉开了，而强度 { $gentle } 让新领域上的准确率提高了 5 个百分点（见 README）。
train-button = 训练
stop-button = 停止
status-label = 状态：
status-training = 训练中
status-embedding = 提取特征中
status-idle = 空闲
status-done = 完成
status-error = 出错
stage-label = 阶段：
stage-preparing = 准备中
stage-head = 训练分类头
stage-fine-tune = 微调
preparing-images = 正在准备图片 { $prepared }/{ $total }

## Which parts learn (fine-tuning)
freeze-heading = 哪些部分参与学习
freeze-explain = 骨干网络是一串块：从边缘和纹理（左）到完整的物体（右）。特征提取只在冻结的骨干网络特征上训练分类头：数据少时这是正确的起点，又快又稳妥。微调还让最后几个块以较小的学习率、温和地适应你的图片；先从一到两个块开始，图片更多时再解冻更多。只有最后的块可以训练：每个块都建立在前一个块之上，所以可训练块之后的块也必须一起学习。
blocks-label = 骨干网络的块
block-title = { $name }：输出 { $shape }，{ $parameters } 个参数
head-chip = 分类头
setting-unfreeze = 解冻的块数（0 = 只训练分类头）
setting-head-epochs = 先只训练分类头的轮数
setting-backbone-lr = 骨干网络学习率
setting-bn = 解冻块中的批归一化
bn-frozen = 预训练的统计量
bn-train = 批次统计量
setting-cosine = 学习率余弦衰减
trainable-label = 可训练参数：
trainable-split = （其中 { $parameters } 在 { $blocks } 个解冻的块中，其余在分类头）
trainable-head = （只有分类头）
schedule-explain = 分类头先单独学习 { $epochs } 轮，然后最后 { $blocks } 个块以学习率 { $lr } 加入训练。
bn-frozen-explain = 批归一化保留它在 ImageNet 上学到的统计量（适合小批量）。
bn-train-explain = 批归一化用每个批次的统计量做归一化，并更新它的滑动统计量。
finetune-advice = 在 { $samples } 张图片上解冻 { $blocks } 个块（{ $parameters } 个参数）：数据这么少，解冻太多会让骨干网络忘掉它原来学会的东西，却学不会你的任务。先从 1 到 2 个块开始，或者添加更多图片。
augment-label = 增强训练图片（随机裁剪、翻转、颜色抖动）
augment-strength = 强度（0–1）
augment-preview = 预览
augment-alt = 一张增强后的训练图片

## Classes
class-name-label = 类别名称
class-delete = 删除这个类别
class-delete-named = 删除类别 { $name }
class-delete-confirm = 删除“{ $name }”及其 { $count } 个样本？
target-explain = 模型将来使用场景中的图片，不带标签（用于领域自适应）。
samples-unit = 个样本
samples-embedding = { " " }· 正在提取 { $pending } 个…
sample-remove = 移除这个样本
record-title = 按住以录制摄像头画面
record-needs-camera = 请先打开摄像头
record-label = { $action }（{ $name }）
recording = ● 正在录制…
record-hold = 按住录制
upload-images = 上传图片
upload-label = 上传图片到 { $name }

## Webcam
webcam-label = 摄像头
webcam-video = 摄像头预览
camera-on = 打开摄像头
camera-off = 关闭摄像头
camera-label = 摄像头
fps-label = 录制时每秒帧数
live-start = 用摄像头实时预测
live-stop = 停止实时预测
record-hint = 按住某个类别的录制按钮（鼠标、触摸或空格键），把画面录入这个类别。

## Prediction
predict-heading = 预测
predict-stale = 模型已过时：训练之后类别有了变化。
predict-upload = 上传一张图片进行分类
predict-train-first = 请先训练，再上传图片
predict-webcam-rate = 摄像头 · 每秒 { $fps } 帧
predict-file-time = { $file } · { $millis } 毫秒

## What the pretrained model sees
smoke-summary = 预训练模型看到了什么？（ImageNet 前 5 名）
top5-heading = ImageNet 前 5 名：
top5-time = 在 Worker 中用时 { $millis } 毫秒
drop-hint = 把照片拖到这里，或点击选择一张
drop-formats = JPEG、PNG、WebP 或 GIF · 图片不会离开这台电脑
classifying = 正在分类…

## How it learns (metrics)
metrics-heading = 学习过程
val-accuracy-label = 验证准确率：
progress-numbers = { " " }· 第 { $done }/{ $planned } 轮 · 每秒 { $rate } 个样本 · 已用 { $elapsed } · 预计还需 { $eta }
trained-on = { " " }· 训练设备：
seconds = { $seconds } 秒
cache-size = { $what ->
    [activations] 已缓存进入解冻块的激活值
   *[features] 已缓存特征
}：{ $megabytes } MB{ $views ->
    [0] {""}
   *[other] ，每张图片 { $views } 个增强视图
}
overfit-hint = 训练损失在下降，验证损失却已连续上升 { $epochs } 轮：模型开始死记训练图片（过拟合）。目前最好的权重已保留；增加图片、使用数据增强或减少轮数会有帮助{ $unfrozen ->
    [0] 。
   *[other] ，减少解冻的块也会有帮助。
}
metrics-stale = 训练之后数据有了变化：请重新训练以使用新数据。
chart-loss = 损失
chart-cross-entropy = 交叉熵
chart-accuracy = 准确率
chart-accuracy-axis = 准确率
chart-domains = 区分两个领域
chart-epochs = 轮次（1–{ $epochs }）
chart-fine-tuning = 微调
chart-summary = { $epochs } 轮之后：
chart-series-summary = { $name } 从 { $first } 变为 { $last }（最低 { $low }，最高 { $high }）。
series-train-loss = 训练损失
series-val-loss = 验证损失
series-train-accuracy = 训练准确率
series-val-accuracy = 验证准确率
series-domain = 领域分类器
series-chance = 随机水平（50%）
domain-explain = 领域分类器有 { $percent }% 的时候能区分你标注的图片和新领域的图片。接近 50% 时，特征已经分不出两个领域，所以模型从你的标签中学到的东西也适用于新图片。
kept-final = 保留最后一轮（第 { $epoch } 轮）（领域自适应：新领域的图片没有标签可用来挑选轮次，而且最低验证损失往往出现在适应生效之前）
kept-best = 保留最好的一轮：第 { $epoch } 轮，共 { $epochs } 轮（验证损失最低）
confusion-heading = { $kept } · 在 { $samples } 个验证样本上评分
confusion-heading-epoch = 第 { $epoch } 轮 · 验证
confusion-caption = 混淆矩阵：行是真实类别，列是预测类别
confusion-accuracy = 准确率
confusion-right = { $total } 张验证图片中有 { $right } 张分类正确。
confusion-worst = 最常见的错误：{ $count } 张“{ $truth }”被预测成“{ $predicted }”。

## Pretrained model
backbone-heading = 预训练模型
backbone-explain = 骨干网络把每张图片变成特征。它学习过的图片和你的图片越接近，学到的东西就迁移得越好：可以换一个试试，或者问问哪个更合适。
backbone-label = 骨干网络
backbone-option = { $name } · { $megabytes } MB · ImageNet top-1 { $top1 }% · { $speed }
backbone-speed = 在这里每张图片 { $millis } 毫秒
backbone-speed-unknown = 尚未测速
reembedding = 正在用新的骨干网络为你的图片提取特征：{ $done } / { $total }
rank-button = 哪个模型合适？
ranking = 正在用你标注的图片为每个骨干网络打分…
logme-explain = LogME（越高越好）：在每个骨干网络的特征上，一个简单模型能多好地解释你的标签，不需要训练就能算出。
backbone-score = { $name }：LogME { $logme }（{ $images } 张图片，{ $seconds } 秒）
backbone-suggestion = { $best } 明显比 { $current } 更适合你的图片。
backbone-switch = 切换到 { $name }
backbone-no-suggestion = 在这里 { $name } 和其他模型一样合适。

## Check set of the new domain
check-heading = 在新领域上检验（可选）
check-explain = 在这里给新领域的几张图片加上标签。训练不会使用它们：每次训练后，页面都会统计用和不用领域自适应时分别答对多少张，让你看到适应是否有帮助。
check-upload-label = 添加 { $name } 的检验图片
images-unit = 张图片
check-add = 添加图片
check-not-measured = 尚未测量
check-train-to-measure = 训练后即可测量。
check-turn-on = 打开“适应新领域”并重新训练，以便比较。
check-turn-off = 关闭“适应新领域”并重新训练，以便比较。
check-helps = 在这些图片上，领域自适应有帮助。
check-hurts = 在这些图片上，领域自适应没有帮助。
check-same = 在这些图片上，领域自适应没有带来差别。
check-with = 使用领域自适应时检验图片上的准确率：
check-without = { " " }· 不使用：{ " " }

## Negative transfer
baseline-pending = 正在与一个不用迁移、直接从原始像素学习的模型比较…
baseline-comparison = 使用 { $backbone } 的验证准确率：{ $transferred }。不用迁移（同样的分类头，直接用 32 x 32 的原始像素）：{ $baseline }。
transfer-helps = 迁移有帮助：骨干网络从数百万张图片中学到的东西，让你的模型比只从你的图片中学习更好。
transfer-warning = 这里迁移没有帮助：预训练特征没有比原始像素高出至少 { $points } 个百分点（如果更差，就是负迁移）。
transfer-try-backbone = 换一个骨干网络：“哪个模型合适？”会在你的图片上给它们打分。
transfer-try-finetune = 微调：解冻最后几个块，让特征适应你的图片。
transfer-try-data = 添加更多或更干净的图片：检查每个类别是否展示出了区分它的特征。

## Page messages
verbatim = { $words }
load-failed = 无法加载模型：{ $message }
backend-problem = { $problem }。Graft 改用 CPU 继续，没有丢失任何东西。
training-stopped = 训练已停止：{ $why }。已保留最好的权重（第 { $epoch } 轮）。
check-failed = 无法为检验图片打分：{ $message }
baseline-failed = 与不用迁移训练的模型比较失败：{ $message }
not-saved = 未保存：{ $message }。
file-too-large = { $name } 太大（{ $size } MB；上限是 { $limit } MB）
skipped = 跳过了 { $count } 个文件：{ $first }
skipped-why = 每个文件被跳过的原因
add-class = + 添加类别
camera-rear = 使用后置摄像头
camera-front = 使用前置摄像头
camera-denied = 摄像头权限被拒绝。请在浏览器的网站设置中允许此页面使用摄像头，然后重试。
camera-missing = 没有找到摄像头。请连接一个，或者改为上传图片。
camera-busy = 摄像头正被另一个应用使用。请在那里关闭它，然后重试。
camera-failed-named = 无法打开摄像头（{ $name }）。
camera-failed = 无法打开摄像头。
camera-unavailable = 这个浏览器无法使用摄像头（需要安全上下文）。
class-default-name = 类别 { $number }
project-default-name = 项目 { $number }
target-name = 未标注：新领域

## Classroom: projector mode and the guided first run
projector-mode = 投影模式
tour-open = 显示引导
tour-heading = 一分钟内用摄像头做出两个类别
tour-camera = 打开摄像头（在下方“摄像头”区域）。
tour-first-class = 对着摄像头展示一样东西，同时按住类别 1 的“按住录制”：录 10 帧或更多。
tour-second-class = 换一样东西，对类别 2 做同样的操作。
tour-train = 按“训练”。只有分类头在骨干网络的特征上学习：这就是特征提取。
tour-live = 按“用摄像头实时预测”，再把其中一样东西展示给摄像头。
tour-progress = 第 { $step } 步，共 { $steps } 步
tour-finished = 完成：你的模型能区分这两样东西了。可以重命名类别、添加第三个类别，或者在下面试试微调。
tour-skip = 跳过引导
tour-close = 关闭引导

## The engine's errors (GraftError::user_message), worded here
error-io = 无法读取 { $path }：{ $detail }
error-not-an-image = { $name } 不是 Graft 能读取的图片（JPEG、PNG、WebP 或 GIF）：{ $reason }
error-image-too-large = { $name } 太大（{ $width }x{ $height } 像素）；每边上限是 { $max_side } 像素
error-truncated-image = { $name } 不完整（文件在图片结束之前就结束了）；没有添加
error-empty-file = { $name } 是空文件（0 字节）
error-bad-checkpoint = 权重文件 { $name } 不是有效的 PyTorch 旧格式检查点：{ $reason }
error-truncated-weights = 权重文件 { $name } 不完整：{ $reason }
error-checksum = { $name } 的校验和不符：应为 sha256 { $expected }，实为 { $actual }
error-weights = 权重与模型不匹配：{ $detail }
error-manifest = 模型清单无效：{ $detail }
error-bad-file = { $what } 无法使用：{ $reason }
error-bad-model-file = { $file } 不是可用的 Graft 模型：{ $reason }
error-bad-project-file = { $file } 不是可用的 Graft 项目：{ $reason }
error-backbone-mismatch = 这些特征由骨干网络 { $found } 生成，但当前加载的骨干网络是 { $expected }
error-training = 无法训练：{ $detail }
error-diverged = 训练在第 { $epoch } 轮发散（损失爆炸或不再是数字）；{ $advice }
error-gpu-unavailable = WebGPU 不可用：{ $detail }
error-gpu = GPU 出错：{ $detail }
error-tensor = 计算失败：{ $detail }
error-setting-between = { $setting }必须在 { $min } 到 { $max } 之间
error-setting-above-zero = { $setting }必须大于 0 且不超过 { $max }
error-setting-below = { $setting }必须至少为 0 且小于 { $max }
error-setting-linear-or = { $setting }必须在 0（线性分类头）到 { $max } 之间
error-setting-fewer-than-epochs = { $setting }必须少于总轮数，这样解冻的块才会训练
error-setting-up-to-blocks = { $setting }必须在 0 到 { $blocks }（骨干网络的块数）之间
setting-name-epochs = 轮数
setting-name-batch-size = 批大小
setting-name-learning-rate = 学习率
setting-name-backbone-learning-rate = 骨干网络学习率
setting-name-hidden-units = 隐藏单元数
setting-name-dropout = dropout
setting-name-weight-decay = 权重衰减
setting-name-validation-fraction = 验证集比例
setting-name-head-only-epochs = 只训练分类头的轮数
setting-name-augmentation-strength = 增强强度
setting-name-adaptation-strength = 适应强度
setting-name-unfrozen-blocks = 解冻的块数
blocker-two-classes = 至少要有两个类别才能训练。
blocker-empty-class = 类别“{ $name }”还没有样本。
blocker-no-target = 请添加新领域的未标注图片，才能适应新领域。

## The worker's messages
worker-not-loaded = 模型还没有加载。
worker-train-first = 请先训练模型。
worker-sample-missing = 样本 { $id } 没有保存。
worker-nothing-embedded = 还没有样本提取过特征。
worker-no-pretrained = 这个模型没有预训练分类器。
worker-backbone-changed = 这个样本的特征由 { $key } 提取，它已不是当前加载的骨干网络。
worker-cannot-train = 无法训练：{ $problem }
worker-in-file = { $file }：{ $problem }
training-stopped-preparing = 在训练开始前（准备图片时）已停止。
rank-needs-two-classes = 打分需要至少两个有样本的类别。
backbone-not-loaded = 骨干网络没有加载成功。
backbone-load-failed = 无法加载 { $name }：{ $problem }
switch-while-training = 请先停止训练，再切换骨干网络。
switch-needs-storage = 切换骨干网络需要已加载的模型和浏览器存储。
storage-unavailable = 这个浏览器不允许 Graft 保存（{ $detail }）；重新加载后工作会丢失
storage-backbone-fallback = 无法加载项目的骨干网络（{ $problem }）；改用当前加载的骨干网络
project-elsewhere = “{ $name }”已在另一个标签页中打开并由它保存：本标签页只显示，不做更改。
project-taken-over = “{ $name }”已被另一个标签页接管：本标签页已停止保存。
project-take-over = 在这里接管
project-held-elsewhere = 此项目已在另一个标签页中打开：请先在这里接管
update-ready = Graft 的新版本已就绪。你的项目保持不变。
update-reload = 重新加载以更新
update-after-training = （训练结束后）
storage-full = 浏览器为本站提供的存储空间已满。已保存的内容是安全的，现在添加的内容会先保留在本标签页中，直到有空间为止：请导出项目保留一份副本，并在本设备上腾出空间（删除其他文件，或在导出后删除此项目）。保存会自动恢复。
storage-full-wait = 浏览器存储空间已满，保存已暂停，而此项目还有未保存的内容：请先导出项目或在本设备上腾出空间，再打开其他项目。
project-option-damaged = 损坏的项目（{ $samples } 张图片）：打开以恢复
storage-project-recovered = 无法读取此项目的记录：已把它保存的 { $count } 张图片恢复到“{ $class }”中。请重新把它们分到各个类别。
storage-samples-unreadable = “{ $class }”的 { $count } 个样本无法读取，已略去
storage-samples-unsaved = “{ $class }”的 { $count } 个样本在页面关闭时尚未保存完，不在这里
storage-model-unreadable = 已保存的模型无法读取，已略去：重新训练即可找回
restore-sample-failed = 无法恢复一个已保存的样本：{ $problem }
restore-model-failed = 无法恢复已保存的模型：{ $problem }
fetch-failed = 无法获取 { $url }：{ $detail }
pool-note-little-memory = 内存 { $gigabytes } GB：只用一个 Worker 提取特征
pool-note-memory = 这台设备 { $gigabytes } GB 内存的四分之一能容纳 { $workers } 个 Worker
pool-note-no-start = 提取特征的 Worker 无法启动：{ $detail }
pool-note-hung = { $seconds } 秒没有回应
pool-note-replaced = 一个提取特征的 Worker { $seconds } 秒没有回应：已换上新的 Worker，它的图片交给了其他 Worker
pool-note-lost = 一个提取特征的 Worker 停止了（{ $why }）；还剩 { $live } 个
advice-smaller-rate = 请试试更小的学习率
advice-smaller-backbone-rate = 请试试更小的骨干网络学习率，或者少解冻几个块
advice-no-weights = 在此之前没有完成任何一轮，所以没有可以保留的权重
backend-auto-chose = 自动选择了 CPU：{ $problem }
project-default-first = 我的项目
