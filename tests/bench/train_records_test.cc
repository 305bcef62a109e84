#include "bench/e2e/train_records.h"

#include <gtest/gtest.h>

#include <sstream>

namespace tilestage::bench {
namespace {

struct Logged {
  std::string key;
  int64_t time_ms;
  MlEventType type;
  Json value;
  Json epoch_num;
  std::string file;
};

std::vector<Logged> Events(const std::string& text) {
  auto records = ParseMlLog(text, "test");
  EXPECT_TRUE(records.ok()) << records.status().ToString();
  std::vector<Logged> out;
  for (const auto& r : *records) {
    out.push_back({r.event.key, r.event.time_ms, r.event.event_type, r.event.value,
                   r.event.metadata.value("epoch_num", Json()),
                   r.event.metadata.value("file", std::string())});
  }
  return out;
}

// Two epochs of two steps each, as `tilestage train --json -` prints them.
void FeedTwoEpochs(TrainRecordFollower& f) {
  f.OnLine(R"({"type": "run", "parameters": 1000, "x_shape": [3, 64, 64]})", 5);
  f.OnLine("mpirun noise, not a record", 6);
  f.OnLine(R"({"type": "step", "epoch": 0, "time_ms": 1100, "step_ms": 100,
               "compute_ms": 80, "allreduce_ms": 10})",
           1105);
  f.OnLine(R"({"type": "step", "epoch": 0, "time_ms": 1200, "step_ms": 100,
               "compute_ms": 90, "allreduce_ms": 20})",
           1205);
  f.OnLine(R"({"type": "epoch", "epoch": 0, "time_ms": 1300, "eval_ms": 50, "eval_loss": 0.5,
               "samples_per_s": 40})",
           1305);
  // The second epoch's first step claims to start before the first epoch ended.
  f.OnLine(R"({"type": "step", "epoch": 1, "time_ms": 1350, "step_ms": 400,
               "compute_ms": 70, "allreduce_ms": 30})",
           1355);
  f.OnLine(R"({"type": "step", "epoch": 1, "time_ms": 1450, "step_ms": 100,
               "compute_ms": 80, "allreduce_ms": 40})",
           1455);
  f.OnLine(R"({"type": "epoch", "epoch": 1, "time_ms": 1600, "eval_ms": 500,
               "samples_per_s": 60})",
           1605);
}

TEST(TrainRecords, EpochAndEvalIntervalsAreLoggedAtTheRecordsTimes) {
  std::ostringstream out;
  MlLogger log(&out);
  TrainRecordFollower follower(&log, 2, nullptr);
  FeedTwoEpochs(follower);
  const auto e = Events(out.str());
  ASSERT_EQ(e.size(), 9u) << out.str();
  // Epoch 1 starts when its first step started (1100 - 100); its eval takes eval_ms before the
  // epoch record.
  EXPECT_EQ(e[0].key, mlkey::kEpochStart);
  EXPECT_EQ(e[0].time_ms, 1000);
  EXPECT_EQ(e[0].type, MlEventType::kIntervalStart);
  EXPECT_EQ(e[0].epoch_num, 1);
  EXPECT_EQ(e[1].key, mlkey::kEvalStart);
  EXPECT_EQ(e[1].time_ms, 1250);
  EXPECT_EQ(e[2].key, mlkey::kEvalStop);
  EXPECT_EQ(e[2].time_ms, 1300);
  EXPECT_EQ(e[3].key, "eval_loss");
  EXPECT_EQ(e[3].value, 0.5);
  EXPECT_EQ(e[3].type, MlEventType::kPointInTime);
  EXPECT_EQ(e[4].key, mlkey::kEpochStop);
  EXPECT_EQ(e[4].time_ms, 1300);
  // Epoch 2 never starts before epoch 1's end; its eval never before its last step.
  EXPECT_EQ(e[5].key, mlkey::kEpochStart);
  EXPECT_EQ(e[5].time_ms, 1300);
  EXPECT_EQ(e[5].epoch_num, 2);
  EXPECT_EQ(e[6].key, mlkey::kEvalStart);
  EXPECT_EQ(e[6].time_ms, 1450);
  EXPECT_EQ(e[8].key, mlkey::kEpochStop);  // no eval_loss in the record, no event
  EXPECT_EQ(e[8].time_ms, 1600);
  for (const auto& ev : e) EXPECT_EQ(ev.file, "bench/e2e/train_records.cc") << ev.key;
}

TEST(TrainRecords, FiguresComeFromTheRecords) {
  std::ostringstream out;
  MlLogger log(&out);
  TrainRecordFollower follower(&log, 2, nullptr);
  FeedTwoEpochs(follower);
  auto f = follower.Finish("train.stderr");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->params, 1000);
  EXPECT_EQ(f->x_shape, (std::vector<int64_t>{3, 64, 64}));
  EXPECT_EQ(f->steps, 4);
  EXPECT_DOUBLE_EQ(f->compute_ms_mean, (80 + 90 + 70 + 80) / 4.0);
  EXPECT_DOUBLE_EQ(f->allreduce_s, (10 + 20 + 30 + 40) / 1e3);
  EXPECT_EQ(f->epoch_samples_per_s, (std::vector<double>{40, 60}));
  EXPECT_DOUBLE_EQ(f->samples_per_s, 60);  // the upper median of two
}

TEST(TrainRecords, NoEpochRecordIsDataLossNamingWhereToLook) {
  std::ostringstream out;
  MlLogger log(&out);
  TrainRecordFollower follower(&log, 1, nullptr);
  follower.OnLine(R"({"type": "run", "parameters": 10})", 1);
  auto f = follower.Finish("steps/train.stderr");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("no epoch records"), std::string::npos);
  EXPECT_NE(f.status().message().find("steps/train.stderr"), std::string::npos);
}

TEST(TrainRecords, NoRunRecordIsDataLoss) {
  std::ostringstream out;
  MlLogger log(&out);
  TrainRecordFollower follower(&log, 1, nullptr);
  follower.OnLine(R"({"type": "epoch", "epoch": 0, "time_ms": 10, "samples_per_s": 5})", 10);
  auto f = follower.Finish("train.stderr");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("no run record"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::bench
